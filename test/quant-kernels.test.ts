// The kernels of a quantized site (assembly/quantize.ts, gemm_qs8_4x4_dot16.ts, gemm_qs4.ts with its
// portable and relaxed kernels, hadamard.ts) against host references on fresh random inputs, at odd shapes:
// K not a multiple of 16 (or of 64 for int4), N not a multiple of 4, 1 row and many rows.
//
// Tolerances, and why:
// - quantize_s8 and the GEMMs: exact. The integers are exact by construction (int32 sums cannot
//   overflow), and the references replay the kernels' float steps (f32 product, ties to even, epilogue
//   order) with Math.fround, so every code and every output float must be bit-identical. A float64
//   reference of the dequantized product is also checked, to 2^-22 relative: the epilogue's three f32
//   roundings (int32 -> f32, two multiplies).
// - hadamard_rows_f32: 1e-6 relative to the float64 product x·diag(d)·H/√n. Each output is a ±1 sum of n
//   f32 values through log2(n) + 12 rounded additions; 1e-6 is ~10 ulp, far below any index error (O(1)).
// - shift_channels_f32: exact, one f32 subtraction per value.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kernelBench, rng, relErr, type Bench } from './helpers/kernels.js';
import { packQ4, packQ8 } from '../src/convert/pack.js';
import { hadamardMatrix } from '../src/quant/hadamard.js';
import { roundHalfEven } from '../src/quant/quantizer.js';
import { relaxedSimdWorks } from '../src/hosts/node-wasm.js';
import { q4ScratchBytes } from '../src/model/contract.js';

const fr = Math.fround;

function putBytes(b: Bench, bytes: Uint8Array | Int8Array | Int32Array): number {
  const raw = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = b.alloc(Math.ceil(raw.length / 4) + 16);   // 64 spare bytes: blocks are read whole
  new Uint8Array(b.k.memory.buffer, at, raw.length).set(raw);
  return at;
}
const bytesAt = (b: Bench, at: number, n: number) => new Int8Array(b.k.memory.buffer, at, n).slice();
const i32At = (b: Bench, at: number, n: number) => new Int32Array(b.k.memory.buffer, at, n).slice();
const f32At = (b: Bench, at: number, n: number) => new Float32Array(b.k.memory.buffer, at, n).slice();

/** The kernel's quantizer, replayed: inv = f32(1/s), q = clamp(nearest(f32(x·inv)), qmin−z, qmax−z) + z. */
function quantizeRef(x: number, s: number, z: number, qmin: number, qmax: number): number {
  const inv = fr(1 / s);
  return Math.min(Math.max(roundHalfEven(fr(x * inv)), qmin - z), qmax - z) + z;
}

/** Dynamic per-token range of a row, replayed in f32 as the kernel computes it. */
function dynamicRef(row: Float32Array, qmin: number, qmax: number): [number, number] {
  let lo = 0, hi = 0;
  for (const v of row) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  let s = fr(fr(hi - lo) / (qmax - qmin));
  if (s === 0) s = 1;
  return [s, qmin - roundHalfEven(fr(lo / s))];
}

/** Inputs with heavy tails and exact ties (multiples of half a step) mixed in. */
function activations(r: ReturnType<typeof rng>, n: number, step: number): Float32Array {
  const x = r.normals(n, 2);
  for (let i = 0; i < n; i += 7) x[i] = (Math.round(x[i] / step) + 0.5) * step;   // a tie
  for (let i = 3; i < n; i += 29) x[i] *= 40;                                      // outliers, clamped
  return x;
}

for (const [rows, k] of [[1, 1], [1, 13], [50, 37], [7, 64], [3, 100], [50, 384]] as const) {
  for (const bits of [8, 4]) {
    test(`quantize_s8 ${rows}x${k}, ${bits} bits: static per tensor / per token and dynamic codes are exact`, async () => {
      const b = await kernelBench();
      const r = rng(rows * 1000 + k + bits);
      const qmin = -(2 ** (bits - 1)), qmax = 2 ** (bits - 1) - 1;
      const step = 0.25;
      const x = activations(r, rows * k, step);
      const ldq = Math.ceil(k / 64) * 64;
      const xAt = b.put(x);
      const perToken = Float32Array.from({ length: rows }, (_, t) => step * (1 + (t % 3)));
      const zeros = Int32Array.from({ length: rows }, (_, t) => (t % 5) - 2);
      const cases = [
        { name: 'per tensor', scale: b.put([step]), zero: putBytes(b, Int32Array.of(-3)), perToken: 0 },
        { name: 'per token', scale: b.put(perToken), zero: putBytes(b, zeros), perToken: 1 },
        { name: 'dynamic', scale: 0, zero: 0, perToken: 0 },
      ];
      for (const c of cases) {
        const q = putBytes(b, new Int8Array(rows * ldq).fill(99));
        const sx = b.alloc(rows), zx = b.alloc(rows);
        b.k.quantize_s8(xAt, k, rows, k, c.scale, c.zero, c.perToken, qmin, qmax, q, ldq, sx, zx);
        const got = bytesAt(b, q, rows * ldq), gotS = f32At(b, sx, rows), gotZ = i32At(b, zx, rows);
        for (let t = 0; t < rows; t++) {
          const row = x.subarray(t * k, (t + 1) * k);
          const [s, z] = c.name === 'dynamic' ? dynamicRef(row, qmin, qmax)
            : c.perToken ? [perToken[t], zeros[t]] : [step, -3];
          assert.is(gotS[t], fr(s), `${c.name} row ${t} scale`);
          assert.is(gotZ[t], z, `${c.name} row ${t} zero point`);
          for (let i = 0; i < k; i++) {
            const want = quantizeRef(row[i], s, z, qmin, qmax);
            if (got[t * ldq + i] !== want) assert.unreachable(`${c.name} [${t}, ${i}] x=${row[i]}: ${got[t * ldq + i]} != ${want}`);
            // Against float64: inside the range the code is the nearest step (error <= half a step).
            const code = (row[i] / s) + z;
            if (code > qmin && code < qmax) assert.ok(Math.abs(s * (want - z) - row[i]) <= s / 2 * (1 + 1e-6));
          }
          for (let i = k; i < ldq; i++) assert.is(got[t * ldq + i], 0, 'padding zeroed');
        }
      }
    });
  }
}

test('quantize_s8 rounds ties to even (2.5 -> 2, 3.5 -> 4, -2.5 -> -2)', async () => {
  const b = await kernelBench();
  const x = b.put([2.5, 3.5, -2.5, -3.5, 0.5, -0.5, 1.5, 126.5]);
  const q = putBytes(b, new Int8Array(64)), sx = b.alloc(1), zx = b.alloc(1);
  b.k.quantize_s8(x, 8, 1, 8, b.put([1]), putBytes(b, Int32Array.of(0)), 0, -128, 127, q, 64, sx, zx);
  assert.equal(Array.from(bytesAt(b, q, 8)), [2, 4, -2, -4, 0, 0, 2, 126]);
});

/** Float epilogue of the kernels, replayed: (f32(acc − z·sum) · sw) · sx + bias, groups summed in order. */
function gemmRef(qx: Int8Array, m: number, k: number, codes: Int8Array, n: number, group: number, sw: Float32Array,
                 sum: Int32Array, sx: Float32Array, zx: Int32Array, bias?: Float32Array) {
  const groups = Math.ceil(k / group);
  const exact = new Float32Array(m * n), real = new Float64Array(m * n);
  for (let t = 0; t < m; t++) {
    for (let j = 0; j < n; j++) {
      let y = 0, yReal = 0;
      for (let g = 0; g < groups; g++) {
        let acc = 0;
        for (let kk = g * group; kk < Math.min(k, (g + 1) * group); kk++) {
          acc += qx[t * k + kk] * codes[j * k + kk];
          yReal += sx[t] * (qx[t * k + kk] - zx[t]) * sw[j * groups + g] * codes[j * k + kk];
        }
        const term = fr(fr(acc - zx[t] * sum[j * groups + g]) * sw[j * groups + g]);
        y = groups === 1 ? term : fr(y + term);
      }
      y = fr(y * sx[t]);
      exact[t * n + j] = bias ? fr(y + bias[j]) : y;
      real[t * n + j] = yReal + (bias ? bias[j] : 0);
    }
  }
  return { exact, real };
}

const SHAPES = [[1, 13, 5], [50, 37, 34], [4, 1, 3], [17, 192, 44], [50, 384, 192], [2, 70, 9]] as const;
// Each GEMM kernel through the build that holds it. gemm_qs4_4x4_rdot8 runs here only where this engine
// runs relaxed SIMD correctly (not Node 20); relaxed-simd.test.ts compares it with the portable kernel
// under Deno on every engine.
const GEMMS = [
  { kernel: 'gemm_qs8_4x4_dot16', bits: 8, flavor: 'portable' },
  { kernel: 'gemm_qs4_4x4_dot16', bits: 4, flavor: 'portable' },
  { kernel: 'gemm_qs4_4x4_rdot8', bits: 4, flavor: 'relaxed' },
] as const;
for (const [m, k, n] of SHAPES) {
  for (const { kernel, bits, flavor } of GEMMS) {
    if (flavor === 'relaxed' && !relaxedSimdWorks()) continue;
    test(`${kernel} M=${m} K=${k} N=${n}: exact integers and epilogue; float64 within 2^-22`, async () => {
      const b = await kernelBench(flavor);
      const r = rng(m * 7 + k * 13 + n + bits);
      const group = bits === 8 ? k : 64, groups = Math.ceil(k / group);
      const qmax = bits === 8 ? 127 : 7;
      const codes = Int8Array.from({ length: n * k }, () => Math.round((r.uniform() * 2 - 1) * qmax));
      const ldq = Math.ceil(k / 64) * 64;
      const qx = Int8Array.from({ length: m * k }, () => Math.floor(r.uniform() * 256) - 128);
      const qxPadded = new Int8Array(m * ldq);
      for (let t = 0; t < m; t++) qxPadded.set(qx.subarray(t * k, (t + 1) * k), t * ldq);
      const sw = Float32Array.from({ length: n * groups }, () => fr(0.001 + r.uniform() * 0.01));
      const sum = Int32Array.from({ length: n * groups }, (_, i) => {
        const j = Math.floor(i / groups), g = i % groups;
        let s = 0;
        for (let kk = g * group; kk < Math.min(k, (g + 1) * group); kk++) s += codes[j * k + kk];
        return s;
      });
      const sx = Float32Array.from({ length: m }, () => fr(0.01 + r.uniform() * 0.1));
      const zx = Int32Array.from({ length: m }, () => Math.floor(r.uniform() * 40) - 20);
      const bias = r.normals(n);
      const packed = bits === 8 ? packQ8(codes, n, k) : packQ4(codes, n, k);
      const args = [putBytes(b, qxPadded), ldq, m, k, putBytes(b, packed), n, b.put(sw), putBytes(b, sum),
        b.put(sx), putBytes(b, zx)] as const;
      for (const withBias of [false, true]) {
        const ldc = n + 3;                       // a row stride wider than N: the kernel must respect it
        const c = b.alloc(m * ldc);
        if (bits === 8) b.k.gemm_qs8_4x4_dot16(...args, withBias ? b.put(bias) : 0, c, ldc);
        else b.k.gemm_qs4(...args, withBias ? b.put(bias) : 0, c, ldc, b.alloc(q4ScratchBytes(m, k) / 4));
        const got = f32At(b, c, m * ldc);
        const ref = gemmRef(qx, m, k, codes, n, group, sw, sum, sx, zx, withBias ? bias : undefined);
        const rowsGot = new Float32Array(m * n);
        for (let t = 0; t < m; t++) rowsGot.set(got.subarray(t * ldc, t * ldc + n), t * n);
        for (let i = 0; i < m * n; i++) {
          if (rowsGot[i] !== ref.exact[i]) assert.unreachable(`[${Math.floor(i / n)}, ${i % n}]: ${rowsGot[i]} != ${ref.exact[i]}`);
        }
        assert.ok(relErr(rowsGot, ref.real) <= 2 ** -22, `float64 rel err ${relErr(rowsGot, ref.real)}`);
      }
    });
  }
}

for (const n of [1, 2, 16, 64, 12, 24, 384, 192]) {
  test(`hadamard_rows_f32 n=${n}: x·diag(d)·H/√n within 1e-6 of float64; H·Hᵀ = n·I`, async () => {
    const h = hadamardMatrix(n);
    for (let a = 0; a < n; a++) {
      for (let c = 0; c < n; c++) {
        let dot = 0;
        for (let j = 0; j < n; j++) dot += h[a * n + j] * h[c * n + j];
        if (dot !== (a === c ? n : 0)) assert.unreachable(`H H^T [${a}, ${c}] = ${dot}`);
      }
    }
    const b = await kernelBench();
    const r = rng(n);
    const rows = 5, ld = n + 4;
    const x = r.normals(rows * ld);
    const d = Float32Array.from({ length: n }, () => (r.uniform() < 0.5 ? -1 : 1) * (0.5 + r.uniform()));
    const at = b.put(x);
    b.k.hadamard_rows_f32(at, ld, rows, n, b.put(d), b.alloc(48));
    const got = b.get(at, rows * ld);
    for (let t = 0; t < rows; t++) {
      const want = new Float64Array(n);
      for (let col = 0; col < n; col++) {
        for (let i = 0; i < n; i++) want[col] += x[t * ld + i] * d[i] * h[i * n + col];
        want[col] /= Math.sqrt(n);
      }
      const e = relErr(got.subarray(t * ld, t * ld + n), want);
      assert.ok(e <= 1e-6, `row ${t}: rel err ${e}`);
      for (let i = n; i < ld; i++) assert.is(got[t * ld + i], x[t * ld + i], 'row padding untouched');
    }
  });
}

test('shift_channels_f32 subtracts a per-channel shift at a row stride, exactly', async () => {
  const b = await kernelBench();
  const r = rng(17);
  const rows = 5, k = 13, ldx = 16;
  const x = r.normals(rows * ldx, 3), shift = r.normals(k);
  const at = b.put(x);
  b.k.shift_channels_f32(at, ldx, rows, k, b.put(shift));
  const want = Array.from(x, (v, i) => (i % ldx < k ? fr(v - shift[i % ldx]) : v));
  assert.equal(Array.from(b.get(at, rows * ldx)), want);
});

test.run();

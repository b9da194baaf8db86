// Every fp32 kernel against a float64 reference written here, on fresh seeded random inputs, and the
// generated list of kernels against the builds (the integer kernels: quant-kernels.test.ts).
// Tolerance: relative error (max |diff| / max |ref|) <= 1e-5 unless stated. fp32 has a unit roundoff of
// 6e-8; sums of up to ~1000 terms with random signs accumulate O(sqrt(K) * 6e-8) ~ 2e-6 typical and
// stay well under 1e-5, while any indexing or layout bug gives errors of order 1. A kernel that only
// moves values or rounds once (im2col, token assembly, the residual add) is compared exactly with the
// same f32 rounding replayed (Math.fround).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import binaryen from 'binaryen';
import path from 'node:path';
import { kernelBench, rng, relErr } from './helpers/kernels.js';
import { packKn8 } from '../src/convert/pack.js';
import { KERNEL_NAMES } from '../src/model/kernels.js';
import { packageRoot } from '../src/hosts/node.js';

const TOL = 1e-5;
const fr = Math.fround;
const silu = (v: number) => v / (1 + Math.exp(-v));
const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));

test('gemm_f32_4x8 matches float64 for odd shapes, strides and bias', async () => {
  const b = await kernelBench();
  const r = rng(1);
  for (const [m, k, n] of [[1, 1, 1], [5, 7, 3], [4, 16, 8], [197, 192, 768], [9, 384, 44], [3, 12, 384], [1, 192, 1000], [6, 33, 17]]) {
    const lda = k + 3, ldc = n + 5;
    const a = r.normals(m * lda), w = r.normals(n * k), bias = r.normals(n);
    const out = b.alloc(m * ldc);
    for (const withBias of [false, true]) {
      b.k.gemm_f32_4x8(b.put(a), lda, b.put(packKn8(w, n, k)), withBias ? b.put(bias) : 0, out, ldc, m, k, n);
      const got = b.get(out, m * ldc);
      const want: number[] = [], have: number[] = [];
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
        let s = withBias ? bias[j] : 0;
        for (let q = 0; q < k; q++) s += a[i * lda + q] * w[j * k + q];
        want.push(s); have.push(got[i * ldc + j]);
      }
      const err = relErr(have, want);
      assert.ok(err <= TOL, `m=${m} k=${k} n=${n} bias=${withBias}: rel err ${err}`);
    }
  }
});

test('gemm_f32_4x8 writes nothing outside its output rows and columns', async () => {
  const b = await kernelBench();
  const r = rng(2);
  const [m, k, n, ldc] = [5, 8, 11, 16];
  const out = b.put(new Float32Array(m * ldc).fill(7));
  b.k.gemm_f32_4x8(b.put(r.normals(m * k)), k, b.put(packKn8(r.normals(n * k), n, k)), 0, out, ldc, m, k, n);
  const got = b.get(out, m * ldc);
  for (let i = 0; i < m; i++) for (let j = n; j < ldc; j++) assert.is(got[i * ldc + j], 7);
});

/** Largest |kernel(x) / reference(x) - 1| over n points evenly spaced on [lo, hi], through an array hook. */
async function maxRelativeError(hook: 'exp_f32_array' | 'exp2_nonpositive_f32_array', lo: number, hi: number,
                                reference: (x: number) => number): Promise<number> {
  const b = await kernelBench();
  const n = 40000;
  const x = Float32Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
  const out = b.alloc(n);
  b.k[hook](b.put(x), out, n);
  const got = b.get(out, n);
  let worst = 0;
  for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i] / reference(x[i]) - 1));
  return worst;
}

test('exp_f32x4: max relative error over [-87, 88] is below 4e-7 (a few ulp)', async () => {
  const worst = await maxRelativeError('exp_f32_array', -87, 88, Math.exp);
  assert.ok(worst < 4e-7, `max rel err ${worst}`);
});

test('exp2_nonpositive_f32x4 (the scan\'s decay): max relative error over [-126, 0] below 3e-7', async () => {
  const worst = await maxRelativeError('exp2_nonpositive_f32_array', -126, 0, (v) => 2 ** v);
  assert.ok(worst < 3e-7, `max rel err ${worst}`);
});

test('softplus_inplace_f32: max relative error over [-80, 80] below 4e-7, x itself above 20', async () => {
  const b = await kernelBench();
  const n = 32003;   // not a multiple of 4: the scalar tail runs too
  const x = Float32Array.from({ length: n }, (_, i) => -80 + (160 * i) / (n - 1));
  const at = b.put(x);
  b.k.softplus_inplace_f32(at, n);
  const got = b.get(at, n);
  let worst = 0;
  for (let i = 0; i < n; i++) {
    if (x[i] > 20) assert.is(got[i], x[i]);
    worst = Math.max(worst, Math.abs(got[i] / Math.log1p(Math.exp(x[i])) - 1));
  }
  assert.ok(worst < 4e-7, `max rel err ${worst}`);
});

test('rmsnorm_f32 matches float64 over rows of D channels', async () => {
  const b = await kernelBench();
  const r = rng(3);
  const [rows, d] = [7, 192];
  const x = r.normals(rows * d, 3), w = r.normals(d);
  const out = b.alloc(rows * d);
  b.k.rmsnorm_f32(b.put(x), b.put(w), out, rows, d, 1e-5);
  const want: number[] = [];
  for (let t = 0; t < rows; t++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += x[t * d + j] ** 2;
    const inv = 1 / Math.sqrt(ss / d + 1e-5);
    for (let j = 0; j < d; j++) want.push(x[t * d + j] * inv * w[j]);
  }
  assert.ok(relErr(b.get(out, rows * d), want) <= TOL);
});

test('add_inplace_f32 is the f32 sum, exactly', async () => {
  const b = await kernelBench();
  const r = rng(8);
  const n = 7 * 192;
  const x = r.normals(n, 3), y = r.normals(n);
  const at = b.put(x);
  b.k.add_inplace_f32(at, b.put(y), n);
  assert.equal(Array.from(b.get(at, n)), Array.from(x, (v, i) => fr(v + y[i])));
});

test('conv1d_silu_f32: causal forward and anti-causal mirrored backward', async () => {
  const b = await kernelBench();
  const r = rng(4);
  const [l, e, kw, ldx] = [13, 24, 4, 48];
  const x = r.normals(l * ldx), wEK = r.normals(e * kw), bias = r.normals(e);
  const wKE = new Float32Array(kw * e);
  for (let c = 0; c < e; c++) for (let k = 0; k < kw; k++) wKE[k * e + c] = wEK[c * kw + k];
  for (const reverse of [0, 1]) {
    const out = b.alloc(l * e);
    const [xAt, wAt, biasAt] = [b.put(x), b.put(wKE), b.put(bias)];
    b.k.conv1d_silu_f32(xAt, ldx, wAt, biasAt, out, e, l, e, kw, reverse);
    const want: number[] = [];
    for (let t = 0; t < l; t++) for (let c = 0; c < e; c++) {
      let s = bias[c];
      for (let k = 0; k < kw; k++) {
        const src = reverse ? t + kw - 1 - k : t - (kw - 1) + k;
        if (src >= 0 && src < l) s += wEK[c * kw + k] * x[src * ldx + c];
      }
      want.push(silu(s));
    }
    assert.ok(relErr(b.get(out, l * e), want) <= TOL, `reverse=${reverse}`);
    // A thread's share: channels [8, 20) alone, by offsets, are the same floats as in the whole call.
    const part = b.alloc(l * e), c0 = 8;
    b.k.conv1d_silu_f32(xAt + c0 * 4, ldx, wAt + c0 * 4, biasAt + c0 * 4, part + c0 * 4, e, l, 12, kw, reverse);
    assert.equal(columns(b.get(part, l * e), e, c0, 12), columns(b.get(out, l * e), e, c0, 12), `reverse=${reverse}, channels 8..19`);
  }
});

/** Columns [c0, c0 + n) of a row-major [rows, ld] array, row after row. */
function columns(a: ArrayLike<number>, ld: number, c0: number, n: number): number[] {
  return Array.from({ length: (a.length / ld) * n }, (_, i) => a[Math.floor(i / n) * ld + c0 + (i % n)]);
}

test('selective_scan_f32 (both directions) and softplus match the float64 recurrence', async () => {
  const b = await kernelBench();
  const r = rng(5);
  const [l, e, n, R] = [50, 12, 16, 3];
  const ld = R + 2 * n;
  const u = r.normals(l * e);
  const dtRaw = Float32Array.from({ length: l * e }, () => r.normal() * 2 - 3);
  const a = Float32Array.from({ length: e * n }, (_, i) => -(1 + (i % n)) * (0.5 + r.uniform()));
  const xd = r.normals(l * ld);
  const dskip = r.normals(e);
  const delta = b.put(dtRaw);
  b.k.softplus_inplace_f32(delta, l * e);
  const dGot = b.get(delta, l * e);
  assert.ok(relErr(dGot, Array.from(dtRaw, softplus)) <= 1e-6, 'softplus');
  for (const reverse of [0, 1]) {
    const y = b.alloc(l * e);
    const [uAt, aAt, bcAt, dAt] = [b.put(u), b.put(a), b.put(xd) + R * 4, b.put(dskip)];
    b.k.selective_scan_f32(uAt, delta, aAt, bcAt, ld, dAt, y, e, l, e, reverse);
    const part = b.alloc(l * e), c0 = 5;   // a thread's share: channels [5, 9) alone, by offsets
    b.k.selective_scan_f32(uAt + c0 * 4, delta + c0 * 4, aAt + c0 * n * 4, bcAt, ld, dAt + c0 * 4, part + c0 * 4, e, l, 4, reverse);
    assert.equal(columns(b.get(part, l * e), e, c0, 4), columns(b.get(y, l * e), e, c0, 4), `reverse=${reverse}, channels 5..8`);
    const want = new Float64Array(l * e);
    for (let c = 0; c < e; c++) {
      const h = new Float64Array(n);
      for (let i = 0; i < l; i++) {
        const t = reverse ? l - 1 - i : i;
        const dt = softplus(dtRaw[t * e + c]), ut = u[t * e + c];
        let s = 0;
        for (let q = 0; q < n; q++) {
          h[q] = Math.exp(dt * a[c * n + q]) * h[q] + dt * xd[t * ld + R + q] * ut;
          s += xd[t * ld + R + n + q] * h[q];
        }
        want[t * e + c] = s + dskip[c] * ut;
      }
    }
    const err = relErr(b.get(y, l * e), want);
    assert.ok(err <= TOL, `reverse=${reverse}: rel err ${err}`);
  }
});

/** The mixer's two branches and the gate input at a row stride wider than E, as the forward pass has them. */
function gateInputs(seed: number) {
  const r = rng(seed);
  const [l, e, ldz] = [9, 16, 40];
  return { l, e, ldz, yf: r.normals(l * e), yb: r.normals(l * e), z: r.normals(l * ldz, 4),
    s: Float32Array.from({ length: e }, () => 0.01 + r.uniform() * 20) };
}

// The gates' vector exp is within ~2 ulp; with one division and two multiplies the result is within a few
// ulp of float64, so 1e-6 relative.
test('combine_gate_f32: (yf + yb) / 2 * silu(z) within 1e-6 of float64', async () => {
  const b = await kernelBench();
  const { l, e, ldz, yf, yb, z } = gateInputs(6);
  const yfAt = b.put(yf);
  b.k.combine_gate_f32(yfAt, b.put(yb), b.put(z), ldz, l, e);
  const want = Array.from({ length: l * e }, (_, i) => {
    const t = Math.floor(i / e), c = i % e;
    return ((yf[i] + yb[i]) / 2) * silu(z[t * ldz + c]);
  });
  const err = relErr(b.get(yfAt, l * e), want);
  assert.ok(err <= 1e-6, `rel err ${err}`);
});

test('combine_gate_scaled_f32: (yf + yb) / 2 * z * sigmoid(s * z) within 1e-6 of float64', async () => {
  const b = await kernelBench();
  const { l, e, ldz, yf, yb, z, s } = gateInputs(5);
  const yfAt = b.put(yf);
  b.k.combine_gate_scaled_f32(yfAt, b.put(yb), b.put(z), ldz, l, e, b.put(s));
  const want = Float64Array.from({ length: l * e }, (_, i) => {
    const t = Math.floor(i / e), c = i % e, v = z[t * ldz + c];
    return (yf[i] + yb[i]) / 2 * v / (1 + Math.exp(-s[c] * v));
  });
  const err = relErr(b.get(yfAt, l * e), want);
  assert.ok(err <= 1e-6, `rel err ${err}`);
});

test('combine_gate_scaled_f32 with s = 1 is combine_gate_f32, bit for bit (one source, 1 * z = z)', async () => {
  const b = await kernelBench();
  const { l, e, ldz, yf, yb, z } = gateInputs(9);
  const plain = b.put(yf), scaled = b.put(yf), ybAt = b.put(yb), zAt = b.put(z);
  b.k.combine_gate_f32(plain, ybAt, zAt, ldz, l, e);
  b.k.combine_gate_scaled_f32(scaled, ybAt, zAt, ldz, l, e, b.put(new Float32Array(e).fill(1)));
  assert.equal(Array.from(b.get(scaled, l * e)), Array.from(b.get(plain, l * e)));
});

test('im2col_f32 copies each patch to one row in the conv weight\'s order (MODEL.md §2.1)', async () => {
  const b = await kernelBench();
  const r = rng(7);
  const [ch, size, p, stride] = [2, 12, 4, 4];
  const g = (size - p) / stride + 1, M = g * g;
  const img = r.normals(ch * size * size);
  const patches = b.alloc(M * ch * p * p);
  b.k.im2col_f32(b.put(img), ch, size, size, p, stride, g, patches);
  const got = b.get(patches, M * ch * p * p);
  for (let m = 0; m < M; m++) for (let c = 0; c < ch; c++) for (let ky = 0; ky < p; ky++) for (let kx = 0; kx < p; kx++) {
    const gy = Math.floor(m / g), gx = m % g;
    assert.is(got[m * ch * p * p + c * p * p + ky * p + kx], img[c * size * size + (gy * stride + ky) * size + gx * stride + kx]);
  }
});

test('assemble_tokens_f32 inserts the class token at its index and adds the positions, exactly', async () => {
  const b = await kernelBench();
  const r = rng(10);
  const M = 9, d = 8, L = M + 1, cls = Math.floor(M / 2);
  const emb = r.normals(M * d), clsTok = r.normals(d), pos = r.normals(L * d);
  const out = b.alloc(L * d);
  b.k.assemble_tokens_f32(b.put(emb), b.put(clsTok), b.put(pos), out, L, d, cls);
  const x = b.get(out, L * d);
  for (let t = 0; t < L; t++) for (let j = 0; j < d; j++) {
    const src = t < cls ? emb[t * d + j] : t === cls ? clsTok[j] : emb[(t - 1) * d + j];
    assert.is(x[t * d + j], fr(src + pos[t * d + j]));
  }
});

test('int8_dot_peak sums its blocks times the 4 rows (3, -5, 7, -11) like a 4-row GEMM tile', async () => {
  const b = await kernelBench();
  const r = rng(11);
  const w = new Int8Array(1024).map(() => Math.floor(r.uniform() * 256) - 128);
  const at = b.alloc(256);
  new Int8Array(b.k.memory.buffer, at, 1024).set(w);
  const blocks = 100;   // cycles through the 64 blocks of 16 bytes
  let want = 0;
  for (let i = 0; i < blocks; i++) for (let j = 0; j < 16; j++) want += w[(i % 64) * 16 + j] * (3 - 5 + 7 - 11);
  assert.is(b.k.int8_dot_peak(at, blocks), want);
});

// KERNEL_NAMES and the Kernels interface are generated from the compiler's declarations of the release
// build (scripts/build-wasm.mjs): every build must export exactly those functions, with those arities.
// Read with binaryen (the compiler's own), since Node 20 cannot compile the relaxed builds.
test('the generated kernel list and signatures match what every build exports', () => {
  const generated = readFileSync(path.join(packageRoot()!, 'src/model/kernels.generated.ts'), 'utf8');
  const declared = [...generated.matchAll(/^ {2}(\w+)\((.*)\): \w+;$/gm)].map(([, name, params]) => `${name}/${params ? params.split(',').length : 0}`);
  assert.equal(declared.map((d) => d.split('/')[0]), ['heap_base', ...KERNEL_NAMES]);
  for (const file of ['vimedge.wasm', 'vimedge.relaxed.wasm', 'vimedge.mt.wasm', 'vimedge.mt.relaxed.wasm']) {
    const module = binaryen.readBinary(readFileSync(path.join(packageRoot()!, 'build', file)));
    const exported: string[] = [];
    for (let i = 0; i < module.getNumExports(); i++) {
      const e = binaryen.getExportInfo(module.getExportByIndex(i));
      if (e.kind !== binaryen.ExternalFunction) continue;
      exported.push(`${e.name}/${binaryen.expandType(binaryen.getFunctionInfo(module.getFunction(e.value)).params).length}`);
    }
    module.dispose();
    assert.equal(exported.sort(), [...declared].sort(), file);
  }
});

test.run();

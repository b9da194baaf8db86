/**
 * The WebAssembly kernels (assembly/) as the host sees them: raw exports taking byte offsets into the
 * module's memory. One instance per loaded model, so models never share or corrupt each other's memory.
 */
import { fail } from '../errors.js';

export interface Kernels {
  memory: WebAssembly.Memory;
  heap_base(): number;
  gemm_f32(a: number, lda: number, wp: number, bias: number, c: number, ldc: number,
           m: number, k: number, n: number): void;
  rmsnorm_f32(x: number, w: number, out: number, rows: number, d: number, eps: number): void;
  add_inplace_f32(x: number, y: number, n: number): void;
  conv1d_silu_f32(x: number, ldx: number, w: number, bias: number, out: number,
                  l: number, e: number, k: number, reverse: number): void;
  selective_scan_f32(u: number, delta: number, a: number, bc: number, ldbc: number, dskip: number,
                     y: number, l: number, e: number, reverse: number): void;
  softplus_inplace_f32(x: number, n: number): void;
  combine_gate_f32(yf: number, yb: number, z: number, ldz: number, l: number, e: number): void;
  im2col_f32(img: number, ch: number, h: number, w: number, p: number, stride: number, g: number,
             out: number): void;
  assemble_tokens_f32(patches: number, cls: number, pos: number, out: number,
                      l: number, d: number, c: number): void;
  exp_f32_array(x: number, out: number, n: number): void;
  exp2_nonpositive_f32_array(x: number, out: number, n: number): void;
  // Quantized Linear layers (assembly/gemm_s8.ts, quantize.ts, hadamard.ts, gate_scaled_f32.ts).
  gemm_s8(qx: number, ldq: number, m: number, k: number, w: number, n: number, sw: number, wsum: number,
          sx: number, zx: number, bias: number, c: number, ldc: number): void;
  gemm_s4(qx: number, ldq: number, m: number, k: number, w: number, n: number, sw: number, wsum: number,
          sx: number, zx: number, bias: number, c: number, ldc: number, scratch: number): void;
  quantize_s8(x: number, ldx: number, rows: number, k: number, scale: number, zero: number, perToken: number,
              qmin: number, qmax: number, q: number, ldq: number, sx: number, zx: number): void;
  shift_channels_f32(x: number, ldx: number, rows: number, k: number, shift: number): void;
  hadamard_rows_f32(x: number, ldx: number, rows: number, n: number, d: number, scratch: number): void;
  /** bench/ only: the int8 dot throughput of gemm_s8's instruction mix (assembly/peak.ts). */
  int8_dot_peak(w: number, blocks: number): number;
  combine_gate_scaled_f32(yf: number, yb: number, z: number, ldz: number, l: number, e: number, s: number): void;
}

/** Compiles once per wasm binary; instantiation per model is cheap. */
const compiled = new WeakMap<object, Promise<WebAssembly.Module>>();

/** `memory`: the shared memory the threads build (build/vimedge.mt.wasm) imports; the plain build owns its own. */
export async function instantiateKernels(wasm: Uint8Array | WebAssembly.Module, memory?: WebAssembly.Memory): Promise<Kernels> {
  let module: WebAssembly.Module;
  if (wasm instanceof WebAssembly.Module) {
    module = wasm;
  } else {
    let pending = compiled.get(wasm);
    if (!pending) compiled.set(wasm, pending = WebAssembly.compile(wasm as Uint8Array<ArrayBuffer>));
    module = await pending;
  }
  const instance = await WebAssembly.instantiate(module, memory ? { env: { memory } } : {});
  return instance.exports as unknown as Kernels;
}

/** Grows the module's memory so that `bytes` bytes are addressable. */
export function ensureMemory(k: Kernels, bytes: number): void {
  const have = k.memory.buffer.byteLength;
  if (bytes <= have) return;
  try {
    k.memory.grow(Math.ceil((bytes - have) / 65536));
  } catch (e) {
    fail('BAD_MODEL', `the model needs ${(bytes / 2 ** 20).toFixed(0)} MiB of WebAssembly memory, more than this host gives (${(e as Error).message})`);
  }
}

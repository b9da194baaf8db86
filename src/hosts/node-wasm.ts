/**
 * Node: the compiled kernels, carried inside the package's JavaScript (src/hosts/kernels-wasm.generated.ts,
 * written by `npm run build:wasm` from build/*.wasm), so a bundle of this module needs no file beside it.
 */
import * as inline from './kernels-wasm.generated.js';
import { base64Bytes } from './loading.js';
import { fail } from '../errors.js';

/**
 * Which SIMD the kernels use: 'relaxed' where the engine runs relaxed SIMD correctly (the int4 GEMM's dot
 * product, exact on every conforming implementation, see assembly/gemm_qs4_4x4_rdot8.ts), else 'portable'.
 * Both give identical logits. The check runs the instruction on known values, not only validates it: Node 20's V8
 * has it behind a flag, and there it returns wrong sums (-120 for the -53 below), so Node 20 stays portable;
 * Deno 2 and Node 22+ (V8 >= 11.4, relaxed SIMD shipped) pass. VIMEDGE_SIMD (portable | relaxed) overrides.
 */
export type SimdFlavor = 'portable' | 'relaxed';

/**
 * A module whose probe() returns lane 0 of relaxed_dot_i8x16_i7x16_add_s(splat(-3), splat(5), splat(7)),
 * which is 4 * (-3 * 5) + 7 = -53 (assembled from a one-line AssemblyScript function).
 */
const RELAXED_PROBE = Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 4, 5, 1, 112, 1, 1,
  1, 5, 3, 1, 0, 0, 7, 9, 1, 5, 112, 114, 111, 98, 101, 0, 0, 9, 6, 1, 0, 65, 1, 11, 0, 10, 23, 1, 21, 0, 65, 125, 253, 15,
  65, 5, 253, 15, 65, 7, 253, 17, 253, 147, 2, 253, 27, 0, 15, 11]);

/** Whether this engine runs relaxed SIMD correctly (the probe above), whatever VIMEDGE_SIMD says. */
export function relaxedSimdWorks(): boolean {
  if (!WebAssembly.validate(RELAXED_PROBE)) return false;
  const { probe } = new WebAssembly.Instance(new WebAssembly.Module(RELAXED_PROBE)).exports as { probe(): number };
  return probe() === -53;
}

let detected: SimdFlavor | undefined;

export function simdFlavor(): SimdFlavor {
  const forced = process.env.VIMEDGE_SIMD;
  if (forced !== undefined && forced !== '') {
    if (forced !== 'portable' && forced !== 'relaxed') fail('BAD_ARGUMENT', `VIMEDGE_SIMD must be portable or relaxed, not '${forced}'`);
    return forced;
  }
  return detected ??= relaxedSimdWorks() ? 'relaxed' : 'portable';
}

const decoded = new Map<string, Uint8Array>();

/** The kernels for this engine (build/vimedge[.mt][.relaxed].wasm), with shared memory for threads. */
export async function readKernelWasm(options: { threads?: boolean; flavor?: SimdFlavor } = {}): Promise<Uint8Array> {
  const flavor = options.flavor ?? simdFlavor();
  const name = `${options.threads ? 'THREADS_' : ''}${flavor === 'relaxed' ? 'RELAXED' : 'PORTABLE'}` as const;
  let bytes = decoded.get(name);
  if (!bytes) decoded.set(name, bytes = base64Bytes(inline[name]));
  return bytes;
}

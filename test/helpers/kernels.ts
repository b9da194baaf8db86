// Test access to the raw kernels: a fresh instance and a bump allocator over its memory.
import { instantiateKernels, ensureMemory, type Kernels } from '../../src/model/kernels.js';
import { readKernelWasm, type SimdFlavor } from '../../src/hosts/node-wasm.js';
import { seededRandom } from '../../src/quant/random.js';

export interface Bench {
  k: Kernels;
  /** Copies values into fresh memory; returns the byte offset. */
  put(values: Float32Array | number[]): number;
  /** Reserves n floats; returns the byte offset. */
  alloc(n: number): number;
  get(at: number, n: number): Float64Array;
}

/** Kernels of the given SIMD flavour (default: what this engine would load). */
export async function kernelBench(flavor?: SimdFlavor): Promise<Bench> {
  const k = await instantiateKernels(await readKernelWasm({ flavor }));
  let top = k.heap_base();
  const alloc = (n: number) => {
    const at = top;
    top = Math.ceil((top + n * 4 + 64) / 64) * 64; // 64 spare bytes: kernels may read a vector past the end
    ensureMemory(k, top);
    return at;
  };
  return {
    k,
    alloc,
    put(values) {
      const at = alloc(values.length);
      new Float32Array(k.memory.buffer, at, values.length).set(values);
      return at;
    },
    get: (at, n) => Float64Array.from(new Float32Array(k.memory.buffer, at, n)),
  };
}

/** Seeded uniform/normal generator (the quantizer's mulberry32 + Box-Muller) so failures reproduce. */
export function rng(seed: number) {
  const uniform = seededRandom(seed).next;
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return {
    uniform,
    normal,
    normals: (n: number, scale = 1) => Float32Array.from({ length: n }, () => normal() * scale),
  };
}

/** max |a - b| / max |b|: the relative error measure used throughout the tests. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

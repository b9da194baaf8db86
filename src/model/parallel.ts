/**
 * Splitting one image's work over threads. VimModel describes a parallel step as one list of kernel calls
 * per thread (each list touching its own rows or its own branch of the mixer); a ThreadPool runs list 0
 * on the calling thread and the others on workers that share the model's WebAssembly memory, and returns
 * when all are done. Every row is computed by the same kernel code whatever the split, so the logits are
 * identical at any thread count (test/threads.test.ts).
 */
import { wrapKernels, type KernelName, type Kernels } from './kernels.js';

export interface KernelCall { name: KernelName; args: number[] }

export interface ThreadPool {
  readonly threads: number;
  /** Runs lists[i] on thread i (lists.length <= threads); returns when every list has run. */
  run(lists: KernelCall[][]): void;
  dispose(): void;
}

/** An object with the kernels' call signatures that records calls instead of running them. */
export function recorder(kernels: Kernels, calls: KernelCall[]): Kernels {
  return wrapKernels(kernels, (name) => (...args) => { calls.push({ name, args }); });
}

/**
 * Rows [start, end) of part i when `rows` rows are split into `parts`: boundaries on multiples of 4 (the
 * GEMM tiles), the remainder in the last part.
 */
export function rowRange(rows: number, parts: number, i: number): [number, number] {
  const at = (p: number) => (p >= parts ? rows : Math.min(rows, 4 * Math.round((rows * p) / parts / 4)));
  return [at(i), at(i + 1)];
}

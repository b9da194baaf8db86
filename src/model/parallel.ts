/**
 * Splitting one image's work over threads. VimModel describes a parallel step as one list of kernel calls
 * per thread (each list touching its own rows, or its own channels, of the buffers it writes); a ThreadPool
 * runs list 0 on the calling thread and the others on workers that share the model's WebAssembly memory,
 * and returns when all are done. Every row and every channel is computed by the same kernel code whatever
 * the split, so the logits are identical at any thread count (test/threads.test.ts).
 */
import { wrapKernels, type KernelName, type Kernels } from './kernels.js';

export interface KernelCall { name: KernelName; args: number[] }

/** What a parallel step computes, named for profiles (bench/profile.ts reports the work of each thread a step). */
export type StepName = 'patch embed' | 'norm + in_proj' | 'conv + SiLU' | 'x_proj + dt_proj + softplus' | 'scan' |
  'gate + out_proj + next norm + in_proj' | 'gate + out_proj';

export interface ThreadPool {
  readonly threads: number;
  /** Runs lists[i] on thread i (lists.length <= threads); returns when every list has run. */
  run(lists: KernelCall[][], step: StepName): void;
  dispose(): void;
}

/** An object with the kernels' call signatures that records calls instead of running them. */
export function recorder(kernels: Kernels, calls: KernelCall[]): Kernels {
  return wrapKernels(kernels, (name) => (...args) => { calls.push({ name, args }); });
}

/**
 * Units [start, end) of part i when `units` units of work (rows, channels) are split into `parts` as evenly
 * as boundaries on multiples of `grain` allow; the last part ends at `units` whatever its grain.
 */
export function shareRange(units: number, parts: number, i: number, grain = 1): [number, number] {
  const at = (p: number) => (p >= parts ? units : Math.min(units, grain * Math.round((units * p) / parts / grain)));
  return [at(i), at(i + 1)];
}

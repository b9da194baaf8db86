/**
 * Node's threads: worker_threads around the caller, each with its own instance of the kernels' threads
 * build on the model's shared WebAssembly memory, handed work by the pool of shared-pool.ts.
 */
import { Worker } from 'node:worker_threads';
import { instantiateKernels } from '../model/kernels.js';
import type { Threads } from '../model/model-file.js';
import { readKernelWasm } from './node-wasm.js';
import { MAX_PAGES, startPool, workerLoop, type PoolWorker, type SharedMemoryPool } from './shared-pool.js';
import { fail } from '../errors.js';

let threadsModule: Promise<WebAssembly.Module> | undefined;

/** The kernels' threads build on a fresh shared memory, with threads - 1 workers around it (threads >= 2). */
export async function createNodeThreads(threads: number): Promise<Threads> {
  if (!Number.isInteger(threads) || threads < 2 || threads > 256) fail('BAD_ARGUMENT', `threads must be an integer in 2..256, got ${threads}`);
  const module = await (threadsModule ??= readKernelWasm({ threads: true }).then((b) => WebAssembly.compile(b as Uint8Array<ArrayBuffer>)));
  const memory = new WebAssembly.Memory({ initial: 32, maximum: MAX_PAGES, shared: true });
  const kernels = await instantiateKernels(module, memory);
  let pool: SharedMemoryPool | undefined;
  pool = await startPool(module, memory, kernels, threads, (init) => new Promise<PoolWorker>((resolve, reject) => {
    // The worker's program from source text (eval): no module file of its own next to the compiled host.
    const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads');
      (${workerLoop.toString()})(workerData, () => parentPort.postMessage('ready'));`, { eval: true, workerData: init });
    w.once('message', () => { w.unref(); resolve({ terminate: () => void w.terminate() }); });
    w.once('error', reject);
    w.on('error', (e: Error) => { if (pool) pool.error = e.message; });
  }));
  return { kernels, pool };
}

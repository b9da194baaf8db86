/**
 * Node's ThreadPool (src/model/parallel.ts): worker_threads, each with its own instance of the kernels on
 * the model's shared WebAssembly memory. Hand-off through a small SharedArrayBuffer: the caller writes each
 * worker's call list, bumps a generation counter and wakes the workers; it then runs its own list and waits
 * for a pending counter to reach zero. Both sides spin briefly before sleeping in Atomics.wait, because the
 * steps of a forward pass follow each other within microseconds and a futex wake-up costs tens of them.
 */
import { Worker } from 'node:worker_threads';
import { instantiateKernels, KERNEL_NAMES, type KernelName, type Kernels } from '../model/kernels.js';
import type { KernelCall, ThreadPool } from '../model/parallel.js';
import type { Threads } from '../model/model-file.js';
import { readKernelWasm } from './node-wasm.js';
import { fail } from '../errors.js';

/** Pages of shared memory a model may grow to (2 GiB: Vim-Base fp32 and its activations fit). */
const MAX_PAGES = 32768;

let threadsModule: Promise<WebAssembly.Module> | undefined;

/** The kernels' threads build on a fresh shared memory, with threads - 1 workers around it (threads >= 2). */
export async function createNodeThreads(threads: number): Promise<Threads> {
  if (!Number.isInteger(threads) || threads < 2 || threads > 256) fail('BAD_ARGUMENT', `threads must be an integer in 2..256, got ${threads}`);
  const module = await (threadsModule ??= readKernelWasm({ threads: true }).then((b) => WebAssembly.compile(b as Uint8Array<ArrayBuffer>)));
  const memory = new WebAssembly.Memory({ initial: 32, maximum: MAX_PAGES, shared: true });
  const kernels = await instantiateKernels(module, memory);
  return { kernels, pool: await NodeThreadPool.create(module, memory, kernels, threads) };
}

/** Layout of the control block (Int32 indices) and of each worker's call slot (Float64 values). */
const CONTROL = { generation: 0, pending: 1, failed: 2, ints: 4 } as const;
const SLOT_VALUES = 8192;
/** Spin iterations before sleeping (~20-50 µs). */
const SPINS = 20000;

interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  index: number;
  /** KERNEL_NAMES: a call in a slot names its kernel by its index in this list. */
  names: readonly string[];
  layout: { control: typeof CONTROL; slotValues: number; spins: number };
}

/**
 * A worker's whole program, started from its source text (eval) so that it needs no module file of its
 * own next to the compiled host (dist/, or src/ under a TypeScript loader): instantiate the kernels on the
 * shared memory, then forever wait for a new generation, run the calls of its slot, count itself done.
 * Self-contained on purpose: no imports, no nested functions.
 */
function workerMain(): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const init = workerData as WorkerInit;
  const { control: C, slotValues, spins } = init.layout;
  const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
  const kernels = init.names.map((n) => instance.exports[n] as (...a: number[]) => void);
  const control = new Int32Array(init.control, 0, C.ints);
  const slot = new Float64Array(init.control, 16 + init.index * slotValues * 8, slotValues);
  const args: number[] = [];
  let seen = Atomics.load(control, C.generation);   // read before 'ready': the first job comes after it
  parentPort!.postMessage('ready');
  for (;;) {
    for (let spin = 0; Atomics.load(control, C.generation) === seen; spin++) {
      if (spin > spins) Atomics.wait(control, C.generation, seen);
    }
    seen = Atomics.load(control, C.generation);
    try {
      for (let at = 0; slot[at] !== -1;) {
        const n = slot[at + 1];
        args.length = 0;
        for (let i = 0; i < n; i++) args.push(slot[at + 2 + i]);
        kernels[slot[at]](...args);
        at += 2 + n;
      }
    } catch {
      Atomics.store(control, C.failed, 1);
    }
    if (Atomics.sub(control, C.pending, 1) === 1) Atomics.notify(control, C.pending);
  }
}

export class NodeThreadPool implements ThreadPool {
  readonly threads: number;
  private readonly workers: Worker[];
  private readonly control: Int32Array;
  private readonly slots: Float64Array[];
  private readonly nameIndex: Map<KernelName, number>;
  private readonly kernels: Kernels;
  private error: string | undefined;

  private constructor(kernels: Kernels, workers: Worker[], buffer: SharedArrayBuffer) {
    this.kernels = kernels;
    this.workers = workers;
    this.threads = workers.length + 1;
    this.control = new Int32Array(buffer, 0, CONTROL.ints);
    this.slots = workers.map((_, i) => new Float64Array(buffer, 16 + i * SLOT_VALUES * 8, SLOT_VALUES));
    this.nameIndex = new Map(KERNEL_NAMES.map((n, i) => [n, i]));
    for (const w of workers) w.on('error', (e: Error) => { this.error = e.message; });
  }

  /** Starts threads - 1 workers on `memory` (shared) with `module` (the threads build of the kernels). */
  static async create(module: WebAssembly.Module, memory: WebAssembly.Memory, kernels: Kernels, threads: number): Promise<NodeThreadPool> {
    const buffer = new SharedArrayBuffer(16 + (threads - 1) * SLOT_VALUES * 8);
    const workers = await Promise.all(Array.from({ length: threads - 1 }, (_, i) => new Promise<Worker>((resolve, reject) => {
      const init: WorkerInit = { module, memory, control: buffer, index: i, names: KERNEL_NAMES,
        layout: { control: CONTROL, slotValues: SLOT_VALUES, spins: SPINS } };
      const w = new Worker(`(${workerMain.toString()})()`, { eval: true, workerData: init });
      w.once('message', () => { w.unref(); resolve(w); });
      w.once('error', reject);
    })));
    return new NodeThreadPool(kernels, workers, buffer);
  }

  run(lists: KernelCall[][]): void {
    if (this.error) fail('BAD_MODEL', `a worker thread failed: ${this.error}`);
    const c = this.control;
    for (let i = 1; i < lists.length; i++) {
      const slot = this.slots[i - 1];
      let at = 0;
      for (const call of lists[i]) {
        if (at + 2 + call.args.length >= SLOT_VALUES) fail('BAD_MODEL', 'a parallel step has too many calls for a worker slot');
        slot[at++] = this.nameIndex.get(call.name)!;
        slot[at++] = call.args.length;
        for (const a of call.args) slot[at++] = a;
      }
      slot[at] = -1;
    }
    for (let i = lists.length; i <= this.workers.length; i++) this.slots[i - 1][0] = -1;
    Atomics.store(c, CONTROL.pending, this.workers.length);
    Atomics.add(c, CONTROL.generation, 1);
    Atomics.notify(c, CONTROL.generation);
    const k = this.kernels as unknown as Record<KernelName, (...a: number[]) => void>;
    for (const call of lists[0] ?? []) k[call.name](...call.args);
    for (let spin = 0; Atomics.load(c, CONTROL.pending) !== 0; spin++) {
      if (spin > SPINS) Atomics.wait(c, CONTROL.pending, Atomics.load(c, CONTROL.pending), 1000);
    }
    if (Atomics.load(c, CONTROL.failed)) fail('BAD_MODEL', 'a worker thread failed while running a kernel');
  }

  dispose(): void {
    for (const w of this.workers) void w.terminate();
  }
}

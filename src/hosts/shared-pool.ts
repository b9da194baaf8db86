/**
 * The ThreadPool (src/model/parallel.ts) of every host with threads, on workers that each instantiate the
 * kernels' threads build on the model's shared WebAssembly memory; the hosts only start the workers
 * (node-threads.ts: worker_threads, web-threads.ts: Web Workers). Hand-off through a small
 * SharedArrayBuffer: the caller writes each worker's call list, bumps a generation counter and wakes the
 * workers; it then runs its own list and waits for a pending counter to reach zero. Both sides spin briefly
 * before sleeping in Atomics.wait, because the steps of a forward pass follow each other within
 * microseconds and a futex wake-up costs tens of them.
 */
import { KERNEL_NAMES, type KernelName, type Kernels } from '../model/kernels.js';
import type { KernelCall, StepName, ThreadPool } from '../model/parallel.js';
import { fail } from '../errors.js';

/** Pages of shared memory a model may grow to (2 GiB: Vim-Base fp32 and its activations fit). */
export const MAX_PAGES = 32768;

/**
 * Layout of the shared buffer: the control block (Int32 indices; `timing` set: workers time their lists),
 * then each worker's call slot (Float64 values), then each worker's last list time in ms (Float64).
 */
const CONTROL = { generation: 0, pending: 1, failed: 2, stop: 3, timing: 4, ints: 8 } as const;
const SLOT_VALUES = 8192;
const slotsAt = CONTROL.ints * 4;
/** Spin iterations before sleeping (~20-50 µs). */
const SPINS = 20000;

/** What a worker receives to start: structured-cloneable (the module, the shared memory and buffer). */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  index: number;
  /** KERNEL_NAMES: a call in a slot names its kernel by its index in this list. */
  names: readonly string[];
  layout: { control: typeof CONTROL; slotValues: number; spins: number; workers: number };
}

/**
 * A worker's whole program once it has its WorkerInit: instantiate the kernels on the shared memory, say
 * `ready`, then wait for a new generation, run the calls of its slot, count itself done; until a generation
 * comes with the stop flag (dispose): then it returns. A worker asleep in Atomics.wait is woken that way,
 * since not every host's terminate() interrupts the wait (Deno's does not).
 * Self-contained on purpose (no imports, no nested functions): Node starts it from its source text, so that
 * it needs no module file of its own next to the compiled host.
 */
export function workerLoop(init: WorkerInit, ready: () => void): void {
  const { control: C, slotValues, spins, workers } = init.layout;
  const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
  const kernels = init.names.map((n) => instance.exports[n] as (...a: number[]) => void);
  const control = new Int32Array(init.control, 0, C.ints);
  const at0 = C.ints * 4;
  const slot = new Float64Array(init.control, at0 + init.index * slotValues * 8, slotValues);
  const listMs = new Float64Array(init.control, at0 + workers * slotValues * 8, workers);
  const args: number[] = [];
  let seen = Atomics.load(control, C.generation);   // read before 'ready': the first job comes after it
  ready();
  for (;;) {
    for (let spin = 0; Atomics.load(control, C.generation) === seen; spin++) {
      if (spin > spins) Atomics.wait(control, C.generation, seen);
    }
    seen = Atomics.load(control, C.generation);
    if (Atomics.load(control, C.stop)) return;
    const timed = Atomics.load(control, C.timing) === 1, t0 = timed ? performance.now() : 0;
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
    if (timed) listMs[init.index] = performance.now() - t0;
    if (Atomics.sub(control, C.pending, 1) === 1) Atomics.notify(control, C.pending);
  }
}

/** A started worker, as the pool sees it. */
export interface PoolWorker {
  terminate(): void;
}

/**
 * Starts threads - 1 workers with `start(init)` (resolving once the worker said ready) around the caller's
 * kernels, all on `memory` with `module` (the threads build).
 */
export async function startPool(module: WebAssembly.Module, memory: WebAssembly.Memory, kernels: Kernels, threads: number,
                                start: (init: WorkerInit) => Promise<PoolWorker>): Promise<SharedMemoryPool> {
  const buffer = new SharedArrayBuffer(slotsAt + (threads - 1) * (SLOT_VALUES * 8 + 8));
  const workers = await Promise.all(Array.from({ length: threads - 1 }, (_, index) => start({
    module, memory, control: buffer, index, names: KERNEL_NAMES, layout: { control: CONTROL, slotValues: SLOT_VALUES, spins: SPINS, workers: threads - 1 },
  })));
  return new SharedMemoryPool(kernels, workers, buffer);
}

/** Whether this thread may block in Atomics.wait (a browser's main thread may not: it then only spins). */
function canWait(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/** Where one parallel step's time went (bench/profile.ts), ms. */
export interface StepTiming {
  step: StepName;
  wall: number;        // from the start of the hand-off to the last thread done
  lists: number[];     // each thread's own list, as that thread timed it (0: the caller)
}

export class SharedMemoryPool implements ThreadPool {
  readonly threads: number;
  /** Set by a host when a worker reports an error outside a kernel call. */
  error: string | undefined;
  /** Set (to an empty list) to have every step's timing appended to it. */
  timings: StepTiming[] | undefined;
  private readonly control: Int32Array;
  private readonly slots: Float64Array[];
  private readonly listMs: Float64Array;
  private readonly nameIndex = new Map(KERNEL_NAMES.map((n, i) => [n, i]));
  private readonly waits = canWait();

  constructor(private readonly kernels: Kernels, private readonly workers: PoolWorker[], buffer: SharedArrayBuffer) {
    this.threads = workers.length + 1;
    this.control = new Int32Array(buffer, 0, CONTROL.ints);
    this.slots = workers.map((_, i) => new Float64Array(buffer, slotsAt + i * SLOT_VALUES * 8, SLOT_VALUES));
    this.listMs = new Float64Array(buffer, slotsAt + workers.length * SLOT_VALUES * 8, workers.length);
  }

  run(lists: KernelCall[][], step: StepName): void {
    if (this.error) fail('BAD_MODEL', `a worker thread failed: ${this.error}`);
    const c = this.control, timings = this.timings;
    const t0 = timings ? performance.now() : 0;
    Atomics.store(c, CONTROL.timing, timings ? 1 : 0);
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
    const t1 = timings ? performance.now() : 0;
    for (const call of lists[0] ?? []) k[call.name](...call.args);
    const own = timings ? performance.now() - t1 : 0;
    for (let spin = 0; Atomics.load(c, CONTROL.pending) !== 0; spin++) {
      if (spin > SPINS && this.waits) Atomics.wait(c, CONTROL.pending, Atomics.load(c, CONTROL.pending), 1000);
    }
    if (Atomics.load(c, CONTROL.failed)) fail('BAD_MODEL', 'a worker thread failed while running a kernel');
    timings?.push({ step, wall: performance.now() - t0, lists: [own, ...this.listMs] });
  }

  dispose(): void {
    Atomics.store(this.control, CONTROL.stop, 1);
    Atomics.add(this.control, CONTROL.generation, 1);
    Atomics.notify(this.control, CONTROL.generation);
    for (const w of this.workers) w.terminate();
  }
}

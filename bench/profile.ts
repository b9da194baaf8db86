/**
 * Where one forward pass spends its time: every kernel call of VimModel.forward timed and grouped by kernel
 * and shape, with the GEMMs' GMAC/s next to the int8 / fp32 dot peaks measured in the same process.
 *   node --import tsx bench/profile.ts <model.vimq> [--runs 10] [--threads 8] [--json]
 * Timing each call adds ~1 µs of host overhead per call (a few hundred calls per image); the total is
 * printed next to the untimed latency so the difference shows.
 * Then the work balance at --threads threads: each parallel step (parallel.ts StepName) split as VimModel
 * splits it for that many threads, every thread's call list run here one after the other and timed, so the
 * table (step x thread, share of the step's measured time) reads the same on a machine of any core count.
 * Last, the hand-off on real threads (node-threads.ts): per step, the wall time against the slowest
 * thread's own list; the difference is what handing the step over and waiting for it cost. This one needs
 * as many free cores as threads to mean anything.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { readVimq } from '../src/formats/vimq.js';
import type { ModelMetadata } from '../src/model/contract.js';
import { instantiateKernels, wrapKernels, type KernelName, type Kernels } from '../src/model/kernels.js';
import type { StepName, ThreadPool } from '../src/model/parallel.js';
import { VimModel } from '../src/model/vim-model.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';
import { createNodeThreads } from '../src/hosts/node-threads.js';
import type { SharedMemoryPool, StepTiming } from '../src/hosts/shared-pool.js';

export interface ProfileRow { kernel: string; shape: string; calls: number; ms: number; gmacs?: number }

/** MACs of one call of a matrix kernel, from its arguments (undefined for the other kernels). */
function macsOf(name: KernelName, a: number[]): { shape: string; macs?: number } {
  if (name === 'gemm_f32_4x8') return { shape: `M=${a[6]} K=${a[7]} N=${a[8]}`, macs: a[6] * a[7] * a[8] };
  if (name === 'gemm_qs8_4x4_dot16' || name === 'gemm_qs4') return { shape: `M=${a[2]} K=${a[3]} N=${a[5]}`, macs: a[2] * a[3] * a[5] };
  if (name === 'selective_scan_f32') return { shape: `L=${a[8]} E=${a[9]}` };
  return { shape: '' };
}

/** One parallel step at some thread count: its time per image and each thread's share of it. */
export interface StepBalance { step: StepName; ms: number; shares: number[] }

/**
 * A ThreadPool that runs each thread's list here, in turn, timing it. The n-th step of a forward pass keeps
 * each thread's fastest time over the passes (`best[n]`): on a shared machine a list that was preempted
 * would otherwise look like more work. Each pass starts with the next thread's list, since the list that
 * runs first also brings the step's shared weights into cache for the others.
 */
function timingPool(kernels: Kernels, threads: number): ThreadPool & { best: { step: StepName; ms: number[] }[]; pass(): void } {
  const k = kernels as unknown as Record<KernelName, (...a: number[]) => void>;
  let n = 0, first = 0;
  const best: { step: StepName; ms: number[] }[] = [];
  return {
    threads,
    best,
    pass() { n = 0; first++; },
    run(lists, step) {
      const times = (best[n++] ??= { step, ms: new Array<number>(threads).fill(Infinity) }).ms;
      for (let j = 0; j < lists.length; j++) {
        const i = (first + j) % lists.length, t0 = performance.now();
        for (const call of lists[i]) k[call.name](...call.args);
        times[i] = Math.min(times[i], performance.now() - t0);
      }
      for (let i = lists.length; i < threads; i++) times[i] = 0;
    },
    dispose() {},
  };
}

/** Each step's split over `threads` threads: per-thread fastest times over `runs` images, summed over the layers. */
export async function workBalance(file: string, threads: number, runs: number): Promise<StepBalance[]> {
  const { metadata, data } = await readVimq(await readFile(file), file);
  const kernels = await instantiateKernels(await readKernelWasm());
  const pool = timingPool(kernels, threads);
  const model = new VimModel(metadata.config, kernels, metadata.tensors, data,
    { activationBits: metadata.quantization?.activationBits, pool });
  const input = syntheticInput(metadata.config);
  for (let i = 0; i < runs; i++) {
    pool.pass();
    model.forward(input);
  }
  const steps = new Map<StepName, number[]>();
  for (const { step, ms } of pool.best) {
    const sum = steps.get(step) ?? steps.set(step, new Array<number>(threads).fill(0)).get(step)!;
    ms.forEach((t, i) => { sum[i] += t; });
  }
  return [...steps].map(([step, times]) => {
    const total = times.reduce((a, b) => a + b, 0);
    return { step, ms: total, shares: times.map((t) => t / total) };
  });
}

/** One step kind on real threads, ms per image (medians over the images of per-image sums over the layers). */
export interface HandOff { step: StepName; steps: number; wall: number; slowest: number; overhead: number }

/** Each step kind's wall time and slowest list on `threads` real threads, and the whole forward's time. */
export async function handOffs(file: string, threads: number, runs: number): Promise<{ forwardMs: number; steps: HandOff[] }> {
  const { metadata, data } = await readVimq(await readFile(file), file);
  const { kernels, pool } = await createNodeThreads(threads);
  try {
    const model = new VimModel(metadata.config, kernels, metadata.tensors, data, { activationBits: metadata.quantization?.activationBits, pool });
    const input = syntheticInput(metadata.config);
    for (let i = 0; i < 3; i++) model.forward(input);
    const timed = pool as SharedMemoryPool;
    const perImage: { ms: number; timings: StepTiming[] }[] = [];
    for (let i = 0; i < runs; i++) {
      timed.timings = [];
      const t0 = performance.now();
      model.forward(input);
      perImage.push({ ms: performance.now() - t0, timings: timed.timings });
    }
    timed.timings = undefined;
    const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
    const names = [...new Set(perImage[0].timings.map((t) => t.step))];
    const steps = names.map((step) => {
      const sums = perImage.map(({ timings }) => timings.filter((t) => t.step === step).reduce((a, t) => {
        const slowest = Math.max(...t.lists);
        return { steps: a.steps + 1, wall: a.wall + t.wall, slowest: a.slowest + slowest, overhead: a.overhead + t.wall - slowest };
      }, { steps: 0, wall: 0, slowest: 0, overhead: 0 }));
      return { step, steps: sums[0].steps, wall: median(sums.map((x) => x.wall)), slowest: median(sums.map((x) => x.slowest)),
        overhead: median(sums.map((x) => x.overhead)) };
    });
    return { forwardMs: median(perImage.map((x) => x.ms)), steps };
  } finally {
    pool.dispose();
  }
}

function syntheticInput(c: ModelMetadata['config']): Float32Array {
  return Float32Array.from({ length: c.channels * c.imageSize * c.imageSize }, (_, i) => Math.sin(i * 12.9898) * 2);
}

export async function profileModel(file: string, runs: number): Promise<{ rows: ProfileRow[]; untimedMs: number; timedMs: number }> {
  const { metadata, data } = await readVimq(await readFile(file), file);
  const wasm = await readKernelWasm();
  const plain = new VimModel(metadata.config, await instantiateKernels(wasm), metadata.tensors, data,
    { activationBits: metadata.quantization?.activationBits });
  const raw = await instantiateKernels(wasm);
  const totals = new Map<string, ProfileRow & { macs: number }>();
  let recording = false;
  const timed = wrapKernels(raw, (name, f) => (...a) => {
    if (!recording) return f(...a);
    const t0 = performance.now();
    f(...a);
    const dt = performance.now() - t0;
    const { shape, macs } = macsOf(name, a);
    const key = `${name} ${shape}`;
    const row = totals.get(key) ?? { kernel: name, shape, calls: 0, ms: 0, macs: 0 };
    row.calls++; row.ms += dt; row.macs += macs ?? 0;
    totals.set(key, row);
  });
  const model = new VimModel(metadata.config, timed, metadata.tensors, data, { activationBits: metadata.quantization?.activationBits });
  const input = syntheticInput(metadata.config);
  for (let i = 0; i < 3; i++) { model.forward(input); plain.forward(input); }
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) plain.forward(input);
  const untimedMs = (performance.now() - t0) / runs;
  recording = true;
  const t1 = performance.now();
  for (let i = 0; i < runs; i++) model.forward(input);
  const timedMs = (performance.now() - t1) / runs;
  const rows = [...totals.values()].map((r) => ({
    kernel: r.kernel, shape: r.shape, calls: r.calls / runs, ms: r.ms / runs,
    ...(r.macs ? { gmacs: r.macs / (r.ms / 1e3) / 1e9 } : {}),
  })).sort((a, b) => b.ms - a.ms);
  return { rows, untimedMs, timedMs };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true,
    options: { runs: { type: 'string', default: '10' }, threads: { type: 'string', default: '8' }, json: { type: 'boolean' } } });
  const runs = Number(values.runs), threads = Number(values.threads);
  const result = { ...await profileModel(positionals[0], runs), balance: { threads, steps: await workBalance(positionals[0], threads, runs) },
    handOff: threads > 1 ? { threads, ...await handOffs(positionals[0], threads, runs) } : undefined };
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(`forward: ${result.untimedMs.toFixed(1)} ms untimed, ${result.timedMs.toFixed(1)} ms with per-call timing`);
    console.log('kernel                shape                 calls     ms    share  GMAC/s');
    for (const r of result.rows) {
      console.log(`${r.kernel.padEnd(22)}${r.shape.padEnd(22)}${String(r.calls).padStart(5)}${r.ms.toFixed(2).padStart(8)}` +
        `${(100 * r.ms / result.timedMs).toFixed(1).padStart(7)}%${r.gmacs ? r.gmacs.toFixed(1).padStart(8) : ''}`);
    }
    console.log(`\nwork balance at ${threads} threads: each thread's share of a step's measured time (even: ${(100 / threads).toFixed(1)}%)`);
    console.log(`${'step'.padEnd(38)}${'ms'.padStart(7)}${Array.from({ length: threads }, (_, i) => `t${i}`.padStart(7)).join('')}  max/even`);
    for (const b of result.balance.steps) {
      console.log(`${b.step.padEnd(38)}${b.ms.toFixed(2).padStart(7)}${b.shares.map((f) => (100 * f).toFixed(1).padStart(7)).join('')}` +
        `${(Math.max(...b.shares) * threads).toFixed(3).padStart(10)}`);
    }
    const h = result.handOff;
    if (h) {
      console.log(`\nhand-off on ${h.threads} real threads: ${h.forwardMs.toFixed(1)} ms per image; per step kind, ms per image ` +
        '(wall: hand-off to the last thread done; slowest: the longest own list; overhead: the difference)');
      console.log(`${'step'.padEnd(38)}${'steps'.padStart(6)}${'wall'.padStart(9)}${'slowest'.padStart(9)}${'overhead'.padStart(10)}${'per step µs'.padStart(13)}`);
      for (const x of h.steps) {
        console.log(`${x.step.padEnd(38)}${String(x.steps).padStart(6)}${x.wall.toFixed(2).padStart(9)}${x.slowest.toFixed(2).padStart(9)}` +
          `${x.overhead.toFixed(2).padStart(10)}${(1000 * x.overhead / x.steps).toFixed(1).padStart(13)}`);
      }
      const serial = h.forwardMs - h.steps.reduce((a, x) => a + x.wall, 0);
      console.log(`${'between steps (this thread alone)'.padEnd(38)}${''.padStart(6)}${serial.toFixed(2).padStart(9)}`);
    }
  }
}

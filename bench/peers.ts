/**
 * Peers of the speed benchmark: the same Vim checkpoint run by other runtimes on this CPU, one process each.
 *
 *   node --import tsx bench/peers.ts --model FILE.pth [--image-size H] [--stride S] [--runs 20] [--warmup 3]
 *        [--peers pytorch,ort-web-1,ort-web-2,ort-chromium-1,ort-chromium-2,ort-node-1,ort-node-2,ort-node]
 *        [--keep DIR] [--json]
 *
 * 1. tools/export_onnx.py exports the checkpoint to ONNX (fp32, standard operators only; the selective scan is an
 *    unrolled token loop, see training/vim_model.py) into a temporary folder, with one input (the synthetic image of
 *    `vimedge bench`) and PyTorch's fp32 logits for it.
 * 2. Before any timing, onnxruntime-node runs that input and its logits are compared with PyTorch's: the max
 *    abs / relative difference is printed and a relative difference above 1e-4 (max|a - b| / max|b|) stops the
 *    run. Every timed ONNX row repeats the comparison on its own first output (its note shows the difference).
 * 3. Timed, each in a fresh process, on the same input, batch 1:
 *      pytorch      PyTorch eager fp32 on the CPU, 1 thread (tools/bench_torch.py; Debian torch + OpenBLAS)
 *      ort-web-1/2  onnxruntime-web, wasm backend (SIMD), ort.env.wasm.numThreads = 1 / 2
 *      ort-chromium-1/2  the same in headless Chromium (test/helpers/browsers.ts), in a cross-origin isolated page
 *                   of examples/browser/serve.mjs, on the page's main thread (ORT's own Web Workers for threads)
 *      ort-node-1/2 onnxruntime-node (native CPU execution provider), intraOpNumThreads = 1 / 2
 *      ort-node     onnxruntime-node with default session options (intra-op pool: one thread per physical core)
 *    median_ms / p90_ms: over `runs` timed inferences after `warmup` untimed ones (the cold one counts as one);
 *    percentile q = sorted[min(n - 1, floor(q n))], as `vimedge bench`. cold_start_ms: session creation from
 *    the model file (reading it included; fetching it in Chromium) + first inference, the runtime's module
 *    import not included. peak_rss_mb: the process's peak resident set (Node or Python baseline included; not
 *    measured in Chromium: NaN). model_bytes: the file the runtime loads (.onnx, or the .pth for PyTorch).
 *    cpu_per_wall: process CPU time / wall time over the timed runs (about the number of busy threads; NaN in
 *    Chromium).
 *
 * measurePeers() is the API (bench/speed.ts puts its rows next to vimedge's own); the CLI prints a table.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { launchChromium, serveExample } from '../test/helpers/browsers.js';
import { percentile } from '../src/cli/bench.js';

export const PEER_NAMES = ['pytorch', 'ort-web-1', 'ort-web-2', 'ort-chromium-1', 'ort-chromium-2', 'ort-node-1', 'ort-node-2', 'ort-node'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

export interface PeerOptions {
  /** Checkpoint .pth (official Vim layout, {'model': state_dict}). */
  model: string;
  /** Input side; default from the checkpoint (pos_embed rows, stride = patch). */
  imageSize?: number;
  stride?: number;
  /** Timed runs (default 20) and untimed warm-up runs, the cold one included (default 3). */
  runs?: number;
  warmup?: number;
  /** Which rows (default all, in PEER_NAMES order). */
  peers?: readonly PeerName[];
  /** Keep the exported ONNX model and its check files in this folder (default: a temporary folder, removed). */
  keepDir?: string;
  /** Relative logits tolerance of the ONNX check (default 1e-4). */
  tolerance?: number;
  /** Python with Debian's torch (default /usr/bin/python3). */
  python?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface PeerRow {
  /** One of PEER_NAMES. */
  id: PeerName;
  /** Display name, e.g. "onnxruntime-web wasm (2 threads)". */
  name: string;
  median_ms: number;
  p90_ms: number;
  images_per_s: number;
  cold_start_ms: number;
  note: string;
  /** Threads asked for; 0 = the runtime's default pool (cpu_per_wall shows how many were busy). */
  threads: number;
  runs: number;
  model_bytes: number;
  peak_rss_mb: number;
  min_ms: number;
  cpu_per_wall: number;
  /** ONNX rows: max|logits - PyTorch fp32| / max|PyTorch fp32| on the check input. */
  logits_rel_diff?: number;
}

export interface OnnxCheck {
  max_abs: number;
  max_rel: number;
  top1_equal: boolean;
  tolerance: number;
  onnx_bytes: number;
  nodes?: number;
  scan: string;
  export_seconds: number;
}

export interface PeerReport {
  model: string;
  config: Record<string, number>;
  check: OnnxCheck;
  rows: PeerRow[];
  machine: { cpu: string; cores: number; loadavg_before: number[]; node: string };
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const THIS_FILE = fileURLToPath(import.meta.url);
const RESULT_TAG = '@@peer-result ';

interface CheckManifest {
  onnx: string;
  onnx_bytes: number;
  checkpoint_bytes: number;
  config: Record<string, number>;
  export: { scan: string; seconds: number; nodes?: number };
  input: { file: string; shape: number[] };
  logits_torch_fp32: number[];
}

interface WorkerJob {
  runtime: 'web' | 'node';
  threads: number | 'default';
  onnx: string;
  input: string;
  shape: number[];
  runs: number;
  warmup: number;
}

interface WorkerResult {
  times: number[];
  cold_start_ms: number;
  import_ms: number;
  peak_rss_mb: number;
  cpu_per_wall: number;
  logits: number[];
  version: string;
}

// ------------------------------------------------------------------------------------------------------------
// Shared helpers
// ------------------------------------------------------------------------------------------------------------

export function logitsDiff(got: ArrayLike<number>, want: ArrayLike<number>): { max_abs: number; max_rel: number; top1_equal: boolean } {
  if (got.length !== want.length) throw new Error(`logits length ${got.length}, expected ${want.length}`);
  let maxAbs = 0, scale = 0, ig = 0, iw = 0;
  for (let i = 0; i < want.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
    if (got[i] > got[ig]) ig = i;
    if (want[i] > want[iw]) iw = i;
  }
  if (!Number.isFinite(maxAbs)) maxAbs = Infinity;
  return { max_abs: maxAbs, max_rel: maxAbs / Math.max(scale, 1e-30), top1_equal: ig === iw };
}

function readF32(file: string): Float32Array {
  const buf = readFileSync(file);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Runs a command, streams nothing, returns stdout; throws with the output tail when it fails. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise({ stdout, stderr });
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n` +
        `${(stdout + '\n' + stderr).split('\n').filter(quietLine).slice(-25).join('\n')}`));
    });
  });
}

/** Drops torch 1.13's exporter warnings (about the traced Python ints of the unrolled loops) from the log. */
function quietLine(line: string): boolean {
  return line.trim() !== '' && !/Warning|^\s+(_C\._jit|L = int|Bsz, L|Bsz = int)/.test(line);
}

// ------------------------------------------------------------------------------------------------------------
// ONNX Runtime, installed on first use
// ------------------------------------------------------------------------------------------------------------

/** The part of onnxruntime-node's and onnxruntime-web's API (one API, onnxruntime-common) used here. */
interface OrtTensor { data: unknown }
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface Ort {
  env: { wasm: { numThreads: number }; versions?: { common?: string } };
  InferenceSession: { create(model: string | Uint8Array, options: object): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}

const ORT_VERSION = '1.30.0';
const ORT_DIR = join(ROOT, 'bench/.peers');

/**
 * onnxruntime-node or -web from bench/.peers/ (ignored by git), installed there on first use: they are 300 MB
 * that only this benchmark needs, and onnxruntime-node's install script would fetch CUDA libraries from
 * outside the npm registry unless told to skip (ONNXRUNTIME_NODE_INSTALL=skip; its CPU library is in the
 * npm package).
 */
function resolveOrt(runtime: 'node' | 'web'): string {
  const name = `onnxruntime-${runtime}`;
  if (!existsSync(join(ORT_DIR, 'node_modules', name, 'package.json'))) {
    mkdirSync(ORT_DIR, { recursive: true });
    const r = spawnSync('npm', ['install', '--prefix', ORT_DIR, '--no-save', '--no-package-lock', '--no-audit', '--no-fund',
      `onnxruntime-node@${ORT_VERSION}`, `onnxruntime-web@${ORT_VERSION}`],
    { env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' }, stdio: ['ignore', 2, 2] });
    if (r.status !== 0) throw new Error(`npm install of onnxruntime ${ORT_VERSION} into ${ORT_DIR} failed`);
  }
  return createRequire(join(ORT_DIR, 'package.json')).resolve(name);
}

async function importOrt(runtime: 'node' | 'web'): Promise<Ort> {
  return (await import(pathToFileURL(resolveOrt(runtime)).href)) as Ort;
}

// ------------------------------------------------------------------------------------------------------------
// Worker: one ONNX Runtime configuration in its own process
// ------------------------------------------------------------------------------------------------------------

async function workerMain(job: WorkerJob): Promise<void> {
  const t0 = performance.now();
  const ort = await importOrt(job.runtime);
  const importMs = performance.now() - t0;
  const input = readF32(job.input);
  const started = performance.now();
  let session;
  if (job.runtime === 'web') {
    ort.env.wasm.numThreads = job.threads === 'default' ? 0 : job.threads;
    session = await ort.InferenceSession.create(readFileSync(job.onnx), { executionProviders: ['wasm'] });
  } else {
    const opts = job.threads === 'default' ? {} : { intraOpNumThreads: job.threads, interOpNumThreads: 1 };
    session = await ort.InferenceSession.create(job.onnx, { executionProviders: ['cpu'], ...opts });
  }
  const feeds = { input: new ort.Tensor('float32', input, job.shape) };
  const first = await session.run(feeds);
  const coldStart = performance.now() - started;
  const logits = Array.from(first.logits.data as Float32Array);
  for (let i = 1; i < job.warmup; i++) await session.run(feeds);
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let i = 0; i < job.runs; i++) {
    const s = performance.now();
    await session.run(feeds);
    times.push(performance.now() - s);
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuPerWall = (cpu.user + cpu.system) / 1e3 / (performance.now() - wall0);
  await session.release();
  const result: WorkerResult = {
    times, cold_start_ms: coldStart, import_ms: importMs, logits, cpu_per_wall: cpuPerWall, version: ort.env.versions?.common ?? '?',
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(RESULT_TAG + JSON.stringify(result) + '\n');
}

/**
 * One job in headless Chromium: onnxruntime-web's wasm-only ES module build (dist/ort.wasm.min.mjs, which loads
 * its .wasm next to it) imported into an empty page of the example's server, so that the page is cross-origin
 * isolated (SharedArrayBuffer, ORT's thread pool) and under the same Content-Security-Policy as the example.
 */
async function runInChromium(job: Omit<WorkerJob, 'runtime'>): Promise<WorkerResult> {
  const dir = mkdtempSync(join(tmpdir(), 'vimedge-ort-page-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>onnxruntime-web</title>');
  const server = await serveExample({ '/ort/': join(dir, 'index.html'), '/ort/model.onnx': job.onnx, '/ort/input.bin': job.input });
  const browser = await launchChromium();
  try {
    await browser.goto(`${server.origin}/ort/`);
    const ortModule = '/' + relative(ROOT, join(dirname(resolveOrt('web')), 'ort.wasm.min.mjs')).split('\\').join('/');
    const r = await browser.evaluate<Omit<WorkerResult, 'peak_rss_mb' | 'cpu_per_wall'> & { isolated: boolean }>(`(async () => {
      const t0 = performance.now();
      const ort = await import(${JSON.stringify(ortModule)});
      const import_ms = performance.now() - t0;
      ort.env.wasm.numThreads = ${job.threads === 'default' ? 0 : job.threads};
      const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
      const input = new Float32Array((await bytes('/ort/input.bin')).buffer);
      const started = performance.now();
      const session = await ort.InferenceSession.create(await bytes('/ort/model.onnx'), { executionProviders: ['wasm'] });
      const feeds = { input: new ort.Tensor('float32', input, ${JSON.stringify(job.shape)}) };
      const first = await session.run(feeds);
      const cold_start_ms = performance.now() - started;
      for (let i = 1; i < ${job.warmup}; i++) await session.run(feeds);
      const times = [];
      for (let i = 0; i < ${job.runs}; i++) {
        const s = performance.now();
        await session.run(feeds);
        times.push(performance.now() - s);
      }
      await session.release();
      return { times, cold_start_ms, import_ms, logits: Array.from(first.logits.data), version: ort.env.versions.common,
        isolated: self.crossOriginIsolated };
    })()`);
    if (!r.isolated) throw new Error('the onnxruntime-web page is not cross-origin isolated');
    return { ...r, peak_rss_mb: Number.NaN, cpu_per_wall: Number.NaN, version: `${r.version}, ${browser.version}` };
  } finally {
    await browser.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runWorker(job: WorkerJob): Promise<WorkerResult> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', THIS_FILE, '--worker', JSON.stringify(job)], 600_000);
  const line = stdout.split('\n').reverse().find((l) => l.startsWith(RESULT_TAG));
  if (!line) throw new Error(`peer worker printed no result:\n${stdout.slice(-2000)}`);
  return JSON.parse(line.slice(RESULT_TAG.length)) as WorkerResult;
}

// ------------------------------------------------------------------------------------------------------------
// measurePeers
// ------------------------------------------------------------------------------------------------------------

async function checkWithOnnxruntimeNode(m: CheckManifest): Promise<Float32Array> {
  const ort = await importOrt('node');
  const session = await ort.InferenceSession.create(m.onnx, { executionProviders: ['cpu'] });
  const out = await session.run({ input: new ort.Tensor('float32', readF32(m.input.file), m.input.shape) });
  const logits = Float32Array.from(out.logits.data as Float32Array);
  await session.release();
  return logits;
}

export const ORT_ROWS: Record<Exclude<PeerName, 'pytorch'>, { runtime: WorkerJob['runtime'] | 'chromium'; threads: number | 'default'; name: string; note: string }> = {
  'ort-web-1': { runtime: 'web', threads: 1, name: 'onnxruntime-web wasm (1 thread)', note: 'wasm SIMD backend' },
  'ort-web-2': { runtime: 'web', threads: 2, name: 'onnxruntime-web wasm (2 threads)', note: 'wasm SIMD backend, numThreads 2' },
  'ort-chromium-1': { runtime: 'chromium', threads: 1, name: 'onnxruntime-web wasm in Chromium (1 thread)', note: 'wasm SIMD backend, page main thread' },
  'ort-chromium-2': { runtime: 'chromium', threads: 2, name: 'onnxruntime-web wasm in Chromium (2 threads)', note: 'wasm SIMD backend, numThreads 2, page main thread' },
  'ort-node-1': { runtime: 'node', threads: 1, name: 'onnxruntime-node (1 thread)', note: 'native CPU EP, intraOpNumThreads 1' },
  'ort-node-2': { runtime: 'node', threads: 2, name: 'onnxruntime-node (2 threads)', note: 'native CPU EP, intraOpNumThreads 2' },
  'ort-node': { runtime: 'node', threads: 'default', name: 'onnxruntime-node (default)', note: 'native CPU EP, default session options (intra-op pool = physical cores)' },
};

export async function runPeers(options: PeerOptions): Promise<PeerReport> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const runs = options.runs ?? 20;
  const warmup = options.warmup ?? 3;
  const tolerance = options.tolerance ?? 1e-4;
  const python = options.python ?? '/usr/bin/python3';
  const peers = options.peers ?? PEER_NAMES;
  const modelPath = resolve(options.model);
  const loadBefore = loadavg();
  const dir = options.keepDir ? resolve(options.keepDir) : mkdtempSync(join(tmpdir(), 'vimedge-peers-'));
  mkdirSync(dir, { recursive: true });
  const shapeArgs = [
    ...(options.imageSize ? ['--image-size', String(options.imageSize)] : []),
    ...(options.stride ? ['--stride', String(options.stride)] : []),
  ];
  try {
    // 1. export
    log(`exporting ${options.model} to ONNX (tools/export_onnx.py) ...`);
    const onnxPath = join(dir, 'model.onnx');
    const exp = await run(python, ['tools/export_onnx.py', modelPath, onnxPath, '--no-f64', ...shapeArgs], 600_000);
    for (const line of (exp.stdout + exp.stderr).split('\n').filter(quietLine)) log(`  ${line}`);
    const m = JSON.parse(readFileSync(join(dir, 'model.check.json'), 'utf8')) as CheckManifest;

    // 2. ONNX logits vs PyTorch fp32, before any timing
    const d = logitsDiff(await checkWithOnnxruntimeNode(m), m.logits_torch_fp32);
    const check: OnnxCheck = {
      ...d, tolerance, onnx_bytes: m.onnx_bytes, nodes: m.export.nodes, scan: m.export.scan, export_seconds: m.export.seconds,
    };
    log(`ONNX (onnxruntime-node) vs PyTorch eager fp32 logits: max abs ${d.max_abs.toExponential(2)}, ` +
      `max rel ${d.max_rel.toExponential(2)}, top-1 ${d.top1_equal ? 'same' : 'DIFFERS'} (tolerance ${tolerance})`);
    if (!(d.max_rel <= tolerance) || !d.top1_equal) {
      throw new Error(`ONNX export check failed: relative logits difference ${d.max_rel} > ${tolerance} ` +
        `or top-1 differs; not timing a model that computes something else`);
    }

    // 3. timing, one process per row
    const rows: PeerRow[] = [];
    for (const name of peers) {
      log(`timing ${name} (${runs} runs after ${warmup} warm-up) ...`);
      if (name === 'pytorch') {
        const { stdout } = await run(python, ['tools/bench_torch.py', modelPath, '--runs', String(runs),
          '--warmup', String(warmup), '--threads', '1', ...shapeArgs], 600_000);
        const r = JSON.parse(stdout.trim().split('\n').pop()!);
        const blas = String(r.blas).includes('openblas') ? 'OpenBLAS' : `BLAS ${r.blas}`;
        rows.push({
          id: name, name: 'PyTorch eager fp32 (1 thread)', median_ms: r.median_ms, p90_ms: r.p90_ms, images_per_s: r.images_per_s,
          cold_start_ms: r.cold_start_ms, min_ms: r.min_ms, threads: r.threads, runs: r.runs, model_bytes: r.model_bytes,
          peak_rss_mb: r.peak_rss_mb, cpu_per_wall: r.cpu_per_wall,
          note: `torch ${r.torch} (Debian), ${blas}, training/vim_model.py CPU path; cold = load .pth + first forward ` +
            `(import torch ${(r.import_ms / 1e3).toFixed(1)} s not included)`,
        });
        continue;
      }
      const spec = ORT_ROWS[name];
      const job = { threads: spec.threads, onnx: m.onnx, input: m.input.file, shape: m.input.shape, runs, warmup };
      const r = spec.runtime === 'chromium' ? await runInChromium(job) : await runWorker({ ...job, runtime: spec.runtime });
      const rd = logitsDiff(r.logits, m.logits_torch_fp32);
      if (!(rd.max_rel <= tolerance)) throw new Error(`${name}: logits differ from PyTorch fp32 by ${rd.max_rel} relative`);
      const times = [...r.times].sort((a, b) => a - b);
      const median = percentile(times, 0.5);
      rows.push({
        id: name, name: `${spec.name}`, median_ms: median, p90_ms: percentile(times, 0.9), images_per_s: 1e3 / median,
        cold_start_ms: r.cold_start_ms, min_ms: times[0], runs, model_bytes: m.onnx_bytes, peak_rss_mb: r.peak_rss_mb,
        threads: spec.threads === 'default' ? 0 : spec.threads, cpu_per_wall: r.cpu_per_wall,
        logits_rel_diff: rd.max_rel,
        note: `onnxruntime ${r.version}, ${spec.note}; ${Number.isNaN(r.cpu_per_wall) ? '' : `CPU/wall ${r.cpu_per_wall.toFixed(2)}; `}logits rel diff ` +
          `${rd.max_rel.toExponential(1)}; ${m.export.nodes ?? '?'}-node ONNX`,
      });
    }
    return {
      model: options.model, config: m.config, check, rows,
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), loadavg_before: loadBefore, node: process.version },
    };
  } finally {
    if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
  }
}

/** The timed rows only (see runPeers for the export check and machine details). */
export async function measurePeers(options: PeerOptions): Promise<PeerRow[]> {
  return (await runPeers(options)).rows;
}

// ------------------------------------------------------------------------------------------------------------
// CLI
// ------------------------------------------------------------------------------------------------------------

export function formatPeerTable(rows: PeerRow[]): string {
  const head = ['peer', 'median ms', 'p90 ms', 'images/s', 'cold start ms', 'model MB', 'peak RSS MB', 'note'];
  const body = rows.map((r) => [r.name, r.median_ms.toFixed(1), r.p90_ms.toFixed(1), r.images_per_s.toFixed(2),
    r.cold_start_ms.toFixed(0), (r.model_bytes / 1e6).toFixed(1), Number.isNaN(r.peak_rss_mb) ? '' : r.peak_rss_mb.toFixed(0), r.note]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(width[i]))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      'image-size': { type: 'string' },
      stride: { type: 'string' },
      runs: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '3' },
      peers: { type: 'string' },
      keep: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.model) throw new Error('usage: node --import tsx bench/peers.ts --model FILE.pth [--image-size H] ' +
    `[--stride S] [--runs 20] [--warmup 3] [--peers ${PEER_NAMES.join(',')}] [--keep DIR] [--json]`);
  const int = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
    return n;
  };
  const peers = values.peers?.split(',').map((p) => p.trim()) as PeerName[] | undefined;
  for (const p of peers ?? []) if (!PEER_NAMES.includes(p)) throw new Error(`unknown peer ${p}; one of ${PEER_NAMES.join(', ')}`);
  const report = await runPeers({
    model: values.model, imageSize: int('image-size', values['image-size']), stride: int('stride', values.stride),
    runs: int('runs', values.runs), warmup: int('warmup', values.warmup), peers, keepDir: values.keep,
  });
  if (values.json) {
    console.log(JSON.stringify(report, null, 1));
    return;
  }
  const c = report.config;
  console.log(`${report.model}: ${c.in_chans}x${c.img_size}x${c.img_size}, ${c.tokens} tokens, ${c.params} parameters; ` +
    `${report.machine.cpu}, ${report.machine.cores} cores, load ${report.machine.loadavg_before.map((l) => l.toFixed(2)).join(' ')}, Node ${report.machine.node}`);
  console.log(`ONNX check vs PyTorch eager fp32: max abs ${report.check.max_abs.toExponential(2)}, max rel ` +
    `${report.check.max_rel.toExponential(2)} (tolerance ${report.check.tolerance}), ${(report.check.onnx_bytes / 1e6).toFixed(1)} MB, ` +
    `${report.check.nodes ?? '?'} nodes\n`);
  console.log(formatPeerTable(report.rows));
}

const isMain = import.meta.url === pathToFileURL(process.argv[1] ?? '').href;
if (isMain && process.argv[2] === '--worker') {
  workerMain(JSON.parse(process.argv[3]) as WorkerJob).then(() => process.exit(0), (e) => {
    console.error(e);
    process.exit(1);
  });
} else if (isMain) {
  cli().catch((e: Error) => {
    console.error(e.message);
    process.exit(1);
  });
}

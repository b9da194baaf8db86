/**
 * Speed of vimedge against its peers, all in one run on the same machine, weights and input:
 *   node --import tsx bench/speed.ts [--runs 20] [--skip-peers] [--skip-browsers] [--json results.json]
 * Models: the real-shape Vim-Tiny 224 (197 tokens, random weights: test/fixtures/generated/tiny/model.pth
 * from scripts/make-fixtures.sh) and the shipped Fashion-MNIST model (50 tokens). For each:
 *   - vimedge fp32, W8A8 and W4A8 (mambaquant) at 1 and 2 threads, each in a fresh `vimedge bench --json`
 *     process (median and p90 of --runs runs after warm-up, cold start = read file + instantiate + first image);
 *   - vimedge W8A8 and W4A8 under Deno (bench/deno-bench.mjs), 1 thread, with the portable and the
 *     relaxed-SIMD kernels (Node 20 cannot run relaxed SIMD correctly, Deno 2 can);
 *   - vimedge W8A8 on the other JavaScript engines, 1 and 2 threads: Bun (JavaScriptCore) running
 *     `vimedge bench` as Node does, and the example page (examples/browser) in Chromium (V8), Firefox
 *     (SpiderMonkey) and WebKitGTK (JavaScriptCore), whose Web Worker times `classify` of a PNG of the same
 *     input (PNG decoding included); each page's top-5 must be Node's (scores to 1e-6). --skip-browsers
 *     leaves the browsers out;
 *   - the peers of bench/peers.ts: PyTorch eager fp32 (1 thread), onnxruntime-web wasm (1, 2 threads) on Node
 *     and in Chromium, onnxruntime-node (native), on the same checkpoint exported by tools/export_onnx.py;
 *   - a kernel table for the W8A8 model (bench/profile.ts): each GEMM shape's GMAC/s against the int8 dot
 *     peak measured in the same process (assembly/peak.ts), and the scan's time per token.
 * Ratios are against vimedge W8A8 at 1 thread of the same model on Node; the browser ratios (each page
 * against Chromium's, onnxruntime-web against vimedge in the same Chromium) follow the table. Quantized
 * Vim-Tiny files are calibrated on examples/images (its weights are random: speed does not depend on the
 * calibration).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { profileModel, type ProfileRow } from './profile.js';
import { ORT_ROWS, PEER_NAMES } from './peers.js';
import { instantiateKernels } from '../src/model/kernels.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';
import { loadClassifier } from '../src/index.js';
import { benchImage, percentile } from '../src/cli/bench.js';
import { ENGINE_NAMES, LAUNCHERS, classifyOnExamplePage, serveExample, type Engine } from '../test/helpers/browsers.js';
import { bunBinary, compareTop } from '../test/helpers/hosts.js';
import { rawPng } from '../test/helpers/png.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    work: { type: 'string', default: path.join(tmpdir(), 'vimedge-speed') },
    'skip-peers': { type: 'boolean', default: false },
    'skip-browsers': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const RUNS = Number(args.runs);
/** Untimed runs first, the cold one included, as `vimedge bench --warmup` (its default). */
const WARMUP = 3;
const WORK = args.work!;
mkdirSync(WORK, { recursive: true });

interface Row {
  model: string; engine: string; threads: number; median_ms: number; p90_ms: number; cold_start_ms: number;
  file_bytes: number; wasm_memory_bytes?: number; peak_rss_bytes: number; note?: string;
}

/** The command line that runs the CLI's sources: Node through tsx, or Bun, which runs TypeScript itself. */
interface Runtime { label: string; argv: string[] }
const NODE: Runtime = { label: '', argv: [process.execPath, '--import', 'tsx'] };
const BUN: Runtime = { label: ', Bun', argv: [bunBinary()] };

function vimedgeOn(runtime: Runtime, cliArgs: string[]): string {
  const r = spawnSync(runtime.argv[0], [...runtime.argv.slice(1), 'src/cli/main.ts', ...cliArgs], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vimedge${runtime.label} ${cliArgs.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

const vimedge = (...cliArgs: string[]) => vimedgeOn(NODE, cliArgs);

/** The model files of one model: fp32 and the two integer widths. */
function modelFiles(name: string, fp32: string, calib: string, calibSize: number): Record<string, string> {
  const files: Record<string, string> = { fp32 };
  for (const bits of ['w8a8', 'w4a8']) {
    const shipped = fp32.replace(/\.vimq$/, `.${bits}.vimq`);
    const file = existsSync(shipped) && shipped !== fp32 ? shipped : path.join(WORK, `${name}.${bits}.vimq`);
    if (!existsSync(file)) {
      vimedge('quantize', fp32, '--method', 'mambaquant', '--bits', bits, '--calib', calib, '--calib-size', String(calibSize), '-o', file);
    }
    files[bits] = file;
  }
  return files;
}

function measureVimedge(model: string, files: Record<string, string>, runtime = NODE): Row[] {
  const rows: Row[] = [];
  for (const [weights, file] of Object.entries(files)) {
    for (const threads of [1, 2]) {
      const r = JSON.parse(vimedgeOn(runtime, ['bench', file, '--threads', String(threads), '--runs', String(RUNS),
        '--warmup', String(WARMUP), '--json']));
      rows.push({ model, engine: `vimedge ${weights}${runtime.label}`, threads, median_ms: r.median_ms, p90_ms: r.p90_ms,
        cold_start_ms: r.cold_start_ms, file_bytes: statSync(file).size, wasm_memory_bytes: r.peak_memory_bytes, peak_rss_bytes: r.peak_rss_bytes });
      process.stderr.write(`${model} vimedge ${weights}${runtime.label} ${threads}t: ${r.median_ms.toFixed(1)} ms\n`);
    }
  }
  return rows;
}

const pageEngine = (engine: Engine) => `vimedge w8a8, ${ENGINE_NAMES[engine]} page`;

/**
 * vimedge W8A8 on the example page in each browser, 1 and 2 threads: WARMUP + RUNS classifications of a PNG of
 * `vimedge bench`'s input, timed by the page's Web Worker; every answer checked against Node's for that PNG.
 * Cold start: navigation until the worker's model is ready, plus the first image.
 */
async function measureBrowsers(model: string, file: string): Promise<Row[]> {
  if (args['skip-browsers']) return [];
  const node = await loadClassifier(file);
  const png = path.join(WORK, `${path.basename(file, '.vimq')}.bench.png`);
  writeFileSync(png, rawPng(benchImage(node.info.preprocess)));
  const expected = await node.classify(png);
  node.dispose();
  const server = await serveExample({ '/model.vimq': file, '/bench.png': png });
  const images = Array.from({ length: WARMUP + RUNS }, () => ({ name: 'bench.png', path: '/bench.png', type: 'image/png' }));
  const rows: Row[] = [];
  try {
    for (const engine of Object.keys(LAUNCHERS) as Engine[]) {
      const browser = await LAUNCHERS[engine]();
      try {
        for (const threads of [1, 2]) {
          const run = await classifyOnExamplePage(browser, { origin: server.origin, model: '/model.vimq', threads }, images);
          const scoreDiff = Math.max(...run.answers.map((a) => compareTop(expected, a.top5, `${browser.version}, ${threads} threads`)));
          if (!(scoreDiff <= 1e-6)) throw new Error(`${browser.version}, ${threads} threads: scores differ from Node's by ${scoreDiff}`);
          const times = run.answers.slice(WARMUP).map((a) => a.ms).sort((a, b) => a - b);
          rows.push({ model, engine: pageEngine(engine), threads, median_ms: percentile(times, 0.5), p90_ms: percentile(times, 0.9),
            cold_start_ms: run.readyMs + run.answers[0].ms, file_bytes: statSync(file).size, peak_rss_bytes: Number.NaN,
            note: `${browser.version}, Web Worker, classify() of a PNG, top-5 = Node's to ${scoreDiff.toExponential(0)}` });
          process.stderr.write(`${model} ${browser.version} page ${threads}t: ${rows.at(-1)!.median_ms.toFixed(1)} ms\n`);
        }
      } finally {
        await browser.close();
      }
    }
  } finally {
    server.close();
  }
  return rows;
}

function measureDeno(model: string, files: Record<string, string>): Row[] {
  const deno = path.join('node_modules', '.bin', 'deno');
  const rows: Row[] = [];
  for (const weights of ['w8a8', 'w4a8']) {
    for (const [flavor, wasm] of [['portable', 'build/vimedge.wasm'], ['relaxed SIMD', 'build/vimedge.relaxed.wasm']]) {
      const r = spawnSync(deno, ['run', '--allow-read', 'bench/deno-bench.mjs', process.cwd(), files[weights], wasm, String(RUNS)],
        { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } });
      if (r.status !== 0) throw new Error(`deno bench ${files[weights]}: ${r.stderr.trim()}`);
      const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
      rows.push({ model, engine: `vimedge ${weights}, Deno, ${flavor}`, threads: 1, median_ms: j.median_ms, p90_ms: j.p90_ms,
        cold_start_ms: j.cold_start_ms, file_bytes: statSync(files[weights]).size, peak_rss_bytes: Number.NaN });
      process.stderr.write(`${model} deno ${weights} ${flavor}: ${j.median_ms.toFixed(1)} ms\n`);
    }
  }
  return rows;
}

async function measurePeerRows(model: string, pth: string): Promise<Row[]> {
  if (args['skip-peers']) return [];
  const { measurePeers } = await import('./peers.js');
  const peers = await measurePeers({ model: pth, runs: RUNS, warmup: WARMUP,
    peers: PEER_NAMES.filter((p) => !(args['skip-browsers'] && p.startsWith('ort-chromium'))) });
  return peers.map((p) => ({ model, engine: p.name, threads: p.threads, median_ms: p.median_ms, p90_ms: p.p90_ms,
    cold_start_ms: p.cold_start_ms, file_bytes: p.model_bytes, peak_rss_bytes: p.peak_rss_mb * 1e6, note: p.note }));
}

/** Int8 dot peak of this core (GMAC/s), best of 5 runs of 20 M blocks (64 MACs each). */
async function int8Peak(): Promise<number> {
  const k = await instantiateKernels(await readKernelWasm());
  k.memory.grow(1);
  const w = k.heap_base();
  new Int8Array(k.memory.buffer, w, 1024).forEach((_, i, a) => { a[i] = ((i * 37) % 255) - 127; });
  let best = 0;
  for (let r = 0; r < 5; r++) {
    const blocks = 2e7, t0 = performance.now();
    k.int8_dot_peak(w, blocks);
    best = Math.max(best, (blocks * 64) / ((performance.now() - t0) / 1e3) / 1e9);
  }
  return best;
}

const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)}%`;
const mb = (b?: number) => (b === undefined || Number.isNaN(b) ? '' : (b / 1e6).toFixed(1));

function renderTable(rows: Row[]): string {
  const lines = ['| model | engine | threads | median ms | p90 ms | images/s | cold start ms | file MB | wasm memory MB | peak RSS MB | time / vimedge w8a8 1t |',
    '|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const base = rows.find((b) => b.model === r.model && b.engine === 'vimedge w8a8' && b.threads === 1);
    const ratio = base ? `${(r.median_ms / base.median_ms).toFixed(2)}x` : '';
    lines.push(`| ${r.model} | ${r.engine}${r.note ? ` (${r.note})` : ''} | ${r.threads} | ${r.median_ms.toFixed(1)} | ${r.p90_ms.toFixed(1)} | ` +
      `${(1000 / r.median_ms).toFixed(1)} | ${r.cold_start_ms.toFixed(0)} | ${mb(r.file_bytes)} | ${mb(r.wasm_memory_bytes)} | ${mb(r.peak_rss_bytes)} | ${ratio} |`);
  }
  return lines.join('\n');
}

/** The ratios between engines that the table's column (against Node) does not show, one line per model. */
function renderEngineRatios(rows: Row[]): string {
  const time = (model: string, engine: string, threads: number) =>
    rows.find((r) => r.model === model && r.engine === engine && r.threads === threads)?.median_ms;
  const ratios: [string, [string, number], [string, number]][] = [
    ['Chromium page / Node', [pageEngine('chromium'), 1], ['vimedge w8a8', 1]],
    ['Chromium page 2 threads / 1 thread', [pageEngine('chromium'), 2], [pageEngine('chromium'), 1]],
    ['onnxruntime-web in Chromium / vimedge Chromium page, 1 thread', [ORT_ROWS['ort-chromium-1'].name, 1], [pageEngine('chromium'), 1]],
    ['onnxruntime-web in Chromium / vimedge Chromium page, 2 threads', [ORT_ROWS['ort-chromium-2'].name, 2], [pageEngine('chromium'), 2]],
    ['Firefox page / Chromium page', [pageEngine('firefox'), 1], [pageEngine('chromium'), 1]],
    ['WebKitGTK page / Chromium page', [pageEngine('webkitgtk'), 1], [pageEngine('chromium'), 1]],
    ['Bun / Node', ['vimedge w8a8, Bun', 1], ['vimedge w8a8', 1]],
  ];
  const lines = ['Engines against each other (median time ratios, W8A8, 1 thread unless said):', '',
    `| model | ${ratios.map(([name]) => name).join(' | ')} |`, `|---|${ratios.map(() => '---|').join('')}`];
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    const cells = ratios.map(([, a, b]) => {
      const [ta, tb] = [time(model, ...a), time(model, ...b)];
      return ta === undefined || tb === undefined ? '' : `${(ta / tb).toFixed(2)}x`;
    });
    lines.push(`| ${model} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function renderKernels(model: string, rows: ProfileRow[], peak: number, forwardMs: number, tokens: number): string {
  const lines = [`Kernels of ${model} W8A8, 1 thread (${forwardMs.toFixed(1)} ms per image with per-call timing); int8 dot peak ${peak.toFixed(1)} GMAC/s:`, '',
    '| kernel | shape | calls | ms per image | share | GMAC/s | of peak |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(`| ${r.kernel} | ${r.shape} | ${r.calls} | ${r.ms.toFixed(2)} | ${pct(r.ms, forwardMs)} | ${r.gmacs ? r.gmacs.toFixed(1) : ''} | ` +
      `${r.gmacs && r.kernel.startsWith('gemm_s') ? pct(r.gmacs, peak) : ''} |`);
  }
  const scan = rows.filter((r) => r.kernel === 'selective_scan_f32').reduce((a, r) => ({ ms: a.ms + r.ms, calls: a.calls + r.calls }), { ms: 0, calls: 0 });
  if (scan.calls) lines.push('', `Selective scan: ${((scan.ms * 1e3) / (scan.calls * tokens)).toFixed(2)} µs per token per call ` +
    `(${scan.calls} calls of ${tokens} tokens per image: ${scan.ms.toFixed(1)} ms).`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const TINY = 'test/fixtures/generated/tiny/model.pth';
  if (!existsSync(TINY)) throw new Error(`${TINY} is missing: run \`bash scripts/make-fixtures.sh\``);
  const tinyFp32 = path.join(WORK, 'vim-tiny-224.vimq');
  if (!existsSync(tinyFp32)) vimedge('convert', TINY, '-o', tinyFp32);
  const models = [
    { name: 'Vim-Tiny 224', pth: TINY, files: modelFiles('vim-tiny-224', tinyFp32, 'examples/images', 5), tokens: 197 },
    { name: 'Fashion-MNIST', pth: 'models/vim_fmnist.pth', files: modelFiles('vim-fmnist', 'models/vim-fmnist.vimq', 'fashion-mnist:train', 256), tokens: 50 },
  ];
  const rows: Row[] = [];
  for (const m of models) {
    rows.push(...measureVimedge(m.name, m.files), ...measureDeno(m.name, m.files), ...measureVimedge(m.name, { w8a8: m.files.w8a8 }, BUN),
      ...await measureBrowsers(m.name, m.files.w8a8), ...await measurePeerRows(m.name, m.pth));
  }
  const peak = await int8Peak();
  const kernels = [];
  for (const m of models) {
    const p = await profileModel(m.files.w8a8, 10);
    kernels.push(renderKernels(m.name, p.rows, peak, p.timedMs, m.tokens));
  }
  const cpu = `${cpus().length} x ${cpus()[0]?.model ?? 'CPU'}`;
  const report = [`Run ${new Date().toISOString()} on ${cpu}, Node ${process.version}, ${RUNS} timed runs each.`, '',
    renderTable(rows), '', renderEngineRatios(rows), '', ...kernels.flatMap((k) => [k, ''])].join('\n');
  console.log(report);
  if (args.json) writeFileSync(args.json, JSON.stringify({ rows, peak, report }, null, 1));
}

await main();

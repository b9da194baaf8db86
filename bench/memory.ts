/**
 * Memory and calibration time at the published shapes, with the built CLI (`npm run build` first):
 *   node --import tsx bench/memory.ts [--variants vim-small,vim-base] [--calib-sizes 4,12] [--threads N] [--training]
 * For each variant, a seeded random fp32 checkpoint (tools/make_shape_checkpoint.py, made once in --work):
 *   - `vimedge convert`: peak RSS against 2x the checkpoint (the issue's bound), and with --training the
 *     same from a training checkpoint (EMA copy, AdamW moments, args: ~4x the weights);
 *   - `vimedge classify` of the .vimq (1 thread, one image): peak RSS against 1.5x the WebAssembly heap
 *     (weights + activations, as the loader plans it);
 *   - `vimedge quantize` (mambaquant W8A8) on two calibration sizes of synthetic images: wall time, split into
 *     a fixed part and a part per image, and extrapolated to the default 256 images.
 * Peak RSS is the child's VmHWM (Linux), read as it exits. Every figure depends on the machine's load: the
 * report prints the load average before and after.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { readVimqHeader, readVimqMetadata } from '../src/formats/vimq.js';
import { instantiateKernels } from '../src/model/kernels.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';
import { runStateBytes } from '../src/model/run-state.js';
import { alignUp, BLOB_ALIGN } from '../src/model/contract.js';

const { values: args } = parseArgs({
  options: {
    variants: { type: 'string', default: 'vim-small,vim-base' },
    'calib-sizes': { type: 'string', default: '4,12' },
    threads: { type: 'string', default: String(cpus().length) },
    training: { type: 'boolean', default: false },
    work: { type: 'string', default: path.join(tmpdir(), 'vimedge-memory') },
  },
});
const WORK = args.work!;
const CLI = path.resolve('dist/src/cli/main.js');
const DEFAULT_CALIBRATION = 256;
const MB = 1e6, MiB = 2 ** 20;
mkdirSync(WORK, { recursive: true });
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`);

/** Prints the child's VmHWM and CPU time (all threads) on stderr as it exits (a preload: the CLI runs unchanged). */
const PEAK_PRELOAD = `data:text/javascript,${encodeURIComponent(`
import { readFileSync } from 'node:fs';
process.on('exit', () => {
  const { userCPUTime, systemCPUTime } = process.resourceUsage();
  process.stderr.write('VMHWM_KB ' + /^VmHWM:\\s+(\\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]
    + ' CPU_US ' + (userCPUTime + systemCPUTime) + '\\n');
});
`)}`;

/** Runs the built CLI; its stdout, wall and CPU seconds, and peak RSS in bytes. */
function vimedge(...cliArgs: string[]): { stdout: string; seconds: number; cpuSeconds: number; peakBytes: number } {
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--import', PEAK_PRELOAD, CLI, ...cliArgs], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`vimedge ${cliArgs.join(' ')} failed:\n${r.stderr}`);
  const report = /VMHWM_KB (\d+) CPU_US (\d+)/.exec(r.stderr);
  if (!report) throw new Error(`no peak reported:\n${r.stderr}`);
  return { stdout: r.stdout, seconds, cpuSeconds: Number(report[2]) / 1e6, peakBytes: Number(report[1]) * 1024 };
}

function checkpoint(variant: string, training: boolean): string {
  const file = path.join(WORK, `${variant}${training ? '-training' : ''}.pth`);
  if (!existsSync(file)) {
    const r = spawnSync('/usr/bin/python3', ['tools/make_shape_checkpoint.py', '--variant', variant, '--out', file,
      ...(training ? ['--training'] : [])], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make_shape_checkpoint.py failed:\n${r.stderr}`);
  }
  return file;
}

/** Smooth random RGB pictures, 256 x 256 PNG: calibration input whose content does not matter for time. */
async function calibrationFolder(count: number): Promise<string> {
  const folder = path.join(WORK, 'calibration');
  mkdirSync(folder, { recursive: true });
  if (readdirSync(folder).length >= count) return folder;
  for (let i = 0; i < count; i++) {
    const side = 256, pixels = new Uint8Array(side * side * 3);
    let state = (i + 1) * 2654435761 >>> 0;
    const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const f = [random(), random(), random()].map((v) => v * 0.1), phase = [random(), random(), random()].map((v) => v * 6);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        for (let c = 0; c < 3; c++) {
          pixels[(y * side + x) * 3 + c] = 128 + 100 * Math.sin(f[c] * x + phase[c]) * Math.cos(f[(c + 1) % 3] * y) + 20 * (random() - 0.5);
        }
      }
    }
    await sharp(pixels, { raw: { width: side, height: side, channels: 3 } }).png().toFile(path.join(folder, `${String(i).padStart(3, '0')}.png`));
  }
  return folder;
}

/** WebAssembly memory a loaded .vimq holds: heap_base, its data section, the planned activations, whole pages. */
async function wasmHeapBytes(vimq: string): Promise<number> {
  const bytes = readFileSync(vimq);
  const header = readVimqHeader(bytes, bytes.length, vimq);
  const metadata = readVimqMetadata(bytes, header, bytes.length, vimq);
  const base = (await instantiateKernels(await readKernelWasm())).heap_base();
  return alignUp(alignUp(base + bytes.length - header.dataOffset, BLOB_ALIGN) + runStateBytes(metadata.config), 65536);
}

const rows: string[][] = [];
const row = (...cells: string[]) => { rows.push(cells); console.error(cells.join(' | ')); };
const mb = (bytes: number) => (bytes / MB).toFixed(0);
const load = () => loadavg().map((v) => v.toFixed(1)).join(' ');
const loadBefore = load();

const sizes = args['calib-sizes']!.split(',').map(Number);
const calib = await calibrationFolder(Math.max(...sizes));
for (const variant of args.variants!.split(',')) {
  const pth = checkpoint(variant, false);
  const vimq = path.join(WORK, `${variant}.vimq`);
  const convert = vimedge('convert', pth, '-o', vimq);
  const pthBytes = statSync(pth).size;
  row(variant, 'convert .pth', `${mb(pthBytes)} MB checkpoint`, `${mb(convert.peakBytes)} MB`,
    `${(convert.peakBytes / pthBytes).toFixed(2)}x the checkpoint (bound 2x)`, `${convert.seconds.toFixed(1)} s`);
  if (args.training) {
    const training = checkpoint(variant, true);
    const fromTraining = vimedge('convert', training, '-o', path.join(WORK, `${variant}-training.vimq`));
    const bytes = statSync(training).size;
    row(variant, 'convert training .pth', `${mb(bytes)} MB checkpoint`, `${mb(fromTraining.peakBytes)} MB`,
      `${(fromTraining.peakBytes / bytes).toFixed(2)}x the checkpoint (bound 2x)`, `${fromTraining.seconds.toFixed(1)} s`);
  }
  const heap = await wasmHeapBytes(vimq);
  const classify = vimedge('classify', '--threads', '1', '-m', vimq, path.join(calib, '000.png'));
  row(variant, 'classify .vimq', `${(heap / MiB).toFixed(0)} MiB wasm heap`, `${mb(classify.peakBytes)} MB`,
    `${(classify.peakBytes / heap).toFixed(2)}x the heap (bound 1.5x)`, `${classify.seconds.toFixed(1)} s`);
  const runs = sizes.map((n) => {
    const q = vimedge('quantize', vimq, '--calib', calib, '--calib-size', String(n), '--threads', args.threads!, '--json',
      '-o', path.join(WORK, `${variant}.w8a8.vimq`));
    row(variant, `quantize, ${n} images`, `${args.threads} threads`, `${mb(q.peakBytes)} MB`, '',
      `${q.seconds.toFixed(1)} s (CPU ${q.cpuSeconds.toFixed(1)} s)`);
    return q;
  });
  // Fixed and per-image parts from the smallest and largest size, in wall and in CPU seconds (CPU time is
  // steadier on a loaded machine; on a quiet one, wall = CPU at 1 thread).
  const split = (seconds: (q: typeof runs[0]) => number) => {
    const first = runs[0], last = runs[runs.length - 1];
    const perImage = (seconds(last) - seconds(first)) / (sizes[sizes.length - 1] - sizes[0]);
    const fixed = seconds(first) - perImage * sizes[0];
    return `${fixed.toFixed(0)} s + ${perImage.toFixed(2)} s an image = ${((fixed + perImage * DEFAULT_CALIBRATION) / 60).toFixed(1)} min`;
  };
  row(variant, `quantize, ${DEFAULT_CALIBRATION} images (extrapolated)`, `wall: ${split((q) => q.seconds)}`, '', '',
    `CPU: ${split((q) => q.cpuSeconds)}`);
}

console.log(`\n${cpus().length} x ${cpus()[0].model}; load average (1, 5, 15 min) ${loadBefore} before, ${load()} after\n`);
console.log('| model | step | size | peak RSS | against the bound | wall time |');
console.log('|---|---|---|---|---|---|');
for (const cells of rows) console.log(`| ${cells.join(' | ')} |`);

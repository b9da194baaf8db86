/**
 * Where one forward pass spends its time: every kernel call of VimModel.forward timed and grouped by kernel
 * and shape, with the GEMMs' GMAC/s next to the int8 / fp32 dot peaks measured in the same process.
 *   node --import tsx bench/profile.ts <model.vimq> [--runs 10] [--json]
 * Timing each call adds ~1 µs of host overhead per call (a few hundred calls per image); the total is
 * printed next to the untimed latency so the difference shows.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { readVimq } from '../src/formats/vimq.js';
import { instantiateKernels, wrapKernels, type KernelName } from '../src/model/kernels.js';
import { VimModel } from '../src/model/vim-model.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';

export interface ProfileRow { kernel: string; shape: string; calls: number; ms: number; gmacs?: number }

/** MACs of one call of a matrix kernel, from its arguments (undefined for the other kernels). */
function macsOf(name: KernelName, a: number[]): { shape: string; macs?: number } {
  if (name === 'gemm_f32_4x8') return { shape: `M=${a[6]} K=${a[7]} N=${a[8]}`, macs: a[6] * a[7] * a[8] };
  if (name === 'gemm_qs8_4x4_dot16' || name === 'gemm_qs4') return { shape: `M=${a[2]} K=${a[3]} N=${a[5]}`, macs: a[2] * a[3] * a[5] };
  if (name === 'selective_scan_f32') return { shape: `L=${a[7]} E=${a[8]}` };
  return { shape: '' };
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
  const c = metadata.config;
  const input = Float32Array.from({ length: c.channels * c.imageSize * c.imageSize }, (_, i) => Math.sin(i * 12.9898) * 2);
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
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { runs: { type: 'string', default: '10' }, json: { type: 'boolean' } } });
  const result = await profileModel(positionals[0], Number(values.runs));
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(`forward: ${result.untimedMs.toFixed(1)} ms untimed, ${result.timedMs.toFixed(1)} ms with per-call timing`);
    console.log('kernel                shape                 calls     ms    share  GMAC/s');
    for (const r of result.rows) {
      console.log(`${r.kernel.padEnd(22)}${r.shape.padEnd(22)}${String(r.calls).padStart(5)}${r.ms.toFixed(2).padStart(8)}` +
        `${(100 * r.ms / result.timedMs).toFixed(1).padStart(7)}%${r.gmacs ? r.gmacs.toFixed(1).padStart(8) : ''}`);
    }
  }
}

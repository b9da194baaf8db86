/**
 * Where the outliers are (QUANT-METHODS.md §3): for every quantized site and scan direction,
 * max |x| per channel and per token in every block, over the calibration images, before and after a
 * method's transforms. `vimedge outliers` draws it (src/report/outlier-chart.ts) and prints the summary.
 */
import type { CalibrationImages } from './calibration-source.js';
import { calibrate } from './calibrate.js';
import type { FloatModel } from '../convert/float-model.js';
import { instantiateFloat } from '../model/model-file.js';
import { transformModel } from './quantize-model.js';

/** The sites of QUANT-METHODS.md §1 that feed a Linear, by the Linear's name inside a block. */
export const SITES = [
  { linear: 'in_proj', site: 'Q_in', direction: '' },
  { linear: 'x_proj', site: 'Q_xp', direction: 'fwd' },
  { linear: 'x_proj_b', site: 'Q_xp', direction: 'bwd' },
  { linear: 'dt_proj', site: 'Q_dt', direction: 'fwd' },
  { linear: 'dt_proj_b', site: 'Q_dt', direction: 'bwd' },
  { linear: 'out_proj', site: 'Q_out', direction: '' },
] as const;

export interface SiteProfile {
  label: string;          // e.g. "Q_xp fwd (x_proj input)"
  channel: number[][];    // [block][channel] max |x|
  token: number[][];      // [block][token] max |x|
}

export interface OutlierReport {
  method: string;
  transforms: string[];
  images: number;
  before: SiteProfile[];
  after: SiteProfile[];
}

async function profiles(m: FloatModel, images: CalibrationImages, wasm: Uint8Array | WebAssembly.Module,
                        label: string): Promise<SiteProfile[]> {
  const stats = await calibrate(await instantiateFloat(m, wasm), images, () => ({}), { seed: 0, label });
  const depth = m.metadata.config.depth;
  return SITES.map((s) => {
    const blocks = Array.from({ length: depth }, (_, i) => stats.get(`layers.${i}.mixer.${s.linear}`)!);
    return {
      label: `${s.site}${s.direction ? ` ${s.direction}` : ''} (${s.linear.replace('_b', '')} input)`,
      channel: blocks.map((b) => Array.from(b.channelAbsMax())),
      token: blocks.map((b) => Array.from(b.tokenMin, (lo, t) => Math.max(-lo, b.tokenMax[t]))),
    };
  });
}

export async function outlierReport(source: FloatModel, images: CalibrationImages, wasm: Uint8Array | WebAssembly.Module,
                                    method: string, seed: number): Promise<OutlierReport> {
  const { model, transforms } = await transformModel(source, images, wasm, { method, seed, activationBits: 8 });
  return {
    method, transforms, images: images.count,
    before: await profiles(source, images, wasm, 'before'),
    after: await profiles(model, images, wasm, 'after'),
  };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/** max |x| and the worst block's max / median ratio over channels and over tokens: the outliers in numbers. */
export function summarize(p: SiteProfile) {
  const worst = (rows: number[][]) => Math.max(...rows.map((r) => Math.max(...r) / Math.max(1e-30, median(r))));
  return {
    site: p.label,
    max: Math.max(...p.channel.flat()),
    channelRatio: worst(p.channel),
    tokenRatio: worst(p.token),
  };
}

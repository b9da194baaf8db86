/**
 * Outlier Suppression+ (QUANT-METHODS.md §5): a per-channel shift z (the midpoint of the channel's
 * range) and scale s, X̃ = (X − z)/s, with the Linear compensating, (X − z)/s · (W·diag(s))ᵀ + W·z = X·Wᵀ.
 * - in_proj input: Vim's RMSNorm has no bias, so the shift stays online (`in_proj.input_shift`, one subtract
 *   per element before quantizing) and W·z becomes an in_proj bias; 1/s folds into γ.
 * - dt_proj input (per direction): free. x_proj's dt rows get the bias −z/s and 1/s, dt_proj W·diag(s) and
 *   the bias + W·z. `shiftDt` is the shift alone (MambaQuant's dt shift).
 * The scale comes from OS+'s search: for clip bounds τ from max |X̃| down, s_k = max(1, max X̃_k/τ,
 * min X̃_k/(−τ)), keeping the τ whose quantized product Q(X̃/s)·Q(W·diag(s))ᵀ is closest to X̃·Wᵀ on a
 * reservoir sample of calibration tokens.
 */
import { DIRECTIONS, mixerPrefix } from '../../model/contract.js';
import { ensureExtra, tensor, type FloatModel } from '../../convert/float-model.js';
import { scaleColumns, scaleRows } from '../linalg.js';
import type { Calibration } from '../calibrate.js';
import type { SiteStats } from '../site-stats.js';
import { activationQuantizer, fakeQuantize, weightQuantizer } from '../quantizer.js';
import { fail } from '../../errors.js';

/** Candidate clip bounds τ of the scale search (OS+ uses ≥ 100; 20 keeps the search under seconds). */
const SEARCH_STEPS = 20;
/** Calibration tokens per site the search runs on. */
export const OSPLUS_TOKENS = 64;

const siteStats = (stats: Calibration, site: string): SiteStats =>
  stats.get(site) ?? fail('BAD_ARGUMENT', `no statistics for ${site}`);

/** z_k = (max_k + min_k) / 2. */
export function channelMidpoints(s: SiteStats): Float64Array {
  return Float64Array.from(s.channelMin, (lo, k) => (lo + s.channelMax[k]) / 2);
}

/** Squared error of the quantized product against the float one, for the channel scales s. */
function productError(x: Float32Array, z: Float64Array, w: Float32Array, n: number, k: number, s: Float64Array,
                      lo: Float64Array, hi: Float64Array, reference: Float64Array, bits: number): number {
  let qlo = 0, qhi = 0;
  for (let c = 0; c < k; c++) { qlo = Math.min(qlo, lo[c] / s[c]); qhi = Math.max(qhi, hi[c] / s[c]); }
  const act = activationQuantizer(qlo, qhi, bits, false);
  const wq = new Float64Array(n * k);
  for (let j = 0; j < n; j++) {
    let absmax = 0;
    for (let c = 0; c < k; c++) absmax = Math.max(absmax, Math.abs(w[j * k + c] * s[c]));
    const wa = weightQuantizer(absmax, bits);
    for (let c = 0; c < k; c++) wq[j * k + c] = fakeQuantize(w[j * k + c] * s[c], wa);
  }
  const rows = x.length / k;
  const xq = new Float64Array(k);
  let err = 0;
  for (let t = 0; t < rows; t++) {
    for (let c = 0; c < k; c++) xq[c] = fakeQuantize((x[t * k + c] - z[c]) / s[c], act);
    for (let j = 0; j < n; j++) {
      let y = 0;
      for (let c = 0; c < k; c++) y += xq[c] * wq[j * k + c];
      err += (y - reference[t * n + j]) ** 2;
    }
  }
  return err;
}

/** OS+'s scale search for the input of W [n, k] at a site with shift z. */
export function searchScales(site: SiteStats, z: Float64Array, w: Float32Array, n: number, bits: number): Float64Array {
  const k = site.k, x = site.sampledRows(), rows = x.length / k;
  const lo = Float64Array.from(site.channelMin, (v, c) => v - z[c]);
  const hi = Float64Array.from(site.channelMax, (v, c) => v - z[c]);
  const reference = new Float64Array(rows * n);
  for (let t = 0; t < rows; t++) {
    for (let j = 0; j < n; j++) {
      let y = 0;
      for (let c = 0; c < k; c++) y += (x[t * k + c] - z[c]) * w[j * k + c];
      reference[t * n + j] = y;
    }
  }
  const top = Math.max(...hi, ...lo.map((v) => -v));
  let best = new Float64Array(k).fill(1), bestErr = Infinity;
  for (let i = 0; i < SEARCH_STEPS && top > 0; i++) {
    const tau = top * (1 - i / SEARCH_STEPS);
    const s = Float64Array.from(hi, (h, c) => Math.max(1, h / tau, lo[c] / -tau));
    const err = productError(x, z, w, n, k, s, lo, hi, reference, bits);
    if (err < bestErr) [best, bestErr] = [s, err];
  }
  return best;
}

/** x_proj dt rows and dt_proj of one direction: dtr' = (dtr − z)/s, compensated in dt_proj. */
function foldDt(m: FloatModel, p: string, dir: string, z: Float64Array, s: Float64Array): void {
  const { innerDim: E, dtRank: R, dState: N } = m.metadata.config;
  const inverse = s.map((v) => 1 / v);
  const bias = ensureExtra(m, 'x_proj.bias', `${p}x_proj${dir}.bias`, R + 2 * N);
  for (let k = 0; k < R; k++) bias[k] = (bias[k] - z[k]) / s[k];
  scaleRows(tensor(m, `${p}x_proj${dir}.weight`), E, inverse);
  const wDt = tensor(m, `${p}dt_proj${dir}.weight`), bDt = tensor(m, `${p}dt_proj${dir}.bias`);
  for (let j = 0; j < E; j++) {
    let shift = 0;
    for (let k = 0; k < R; k++) shift += wDt[j * R + k] * z[k];
    bDt[j] += shift;
  }
  scaleColumns(wDt, E, R, s);
}

/** MambaQuant's dt shift: OS+'s shift (no scale) at every dt_proj input. */
export function shiftDt(m: FloatModel, stats: Calibration): void {
  const { depth, dtRank: R } = m.metadata.config;
  for (let i = 0; i < depth; i++) {
    for (const dir of DIRECTIONS) {
      const p = mixerPrefix(i);
      foldDt(m, p, dir, channelMidpoints(siteStats(stats, `${p}dt_proj${dir}`)), new Float64Array(R).fill(1));
    }
  }
}

/** OS+ at the in_proj and dt_proj inputs; the statistics need reservoirs of OSPLUS_TOKENS rows. */
export function osPlus(m: FloatModel, stats: Calibration, bits: number): void {
  const { embedDim: D, innerDim: E, depth } = m.metadata.config;
  for (let i = 0; i < depth; i++) {
    const p = mixerPrefix(i);
    const site = siteStats(stats, `${p}in_proj`);
    const z = channelMidpoints(site);
    const wIn = tensor(m, `${p}in_proj.weight`);
    const s = searchScales(site, z, wIn, 2 * E, bits);
    const bias = ensureExtra(m, 'in_proj.bias', `${p}in_proj.bias`, 2 * E);
    for (let j = 0; j < 2 * E; j++) {
      let shift = 0;
      for (let k = 0; k < D; k++) shift += wIn[j * D + k] * z[k];
      bias[j] += shift;
    }
    const shift = ensureExtra(m, 'in_proj.input_shift', `${p}in_proj.input_shift`, D);
    const gamma = tensor(m, `layers.${i}.norm.weight`);
    for (let k = 0; k < D; k++) {
      shift[k] = z[k] / s[k];
      gamma[k] /= s[k];
    }
    scaleColumns(wIn, 2 * E, D, s);
    for (const dir of DIRECTIONS) {
      const dtSite = siteStats(stats, `${p}dt_proj${dir}`);
      const zDt = channelMidpoints(dtSite);
      foldDt(m, p, dir, zDt, searchScales(dtSite, zDt, tensor(m, `${p}dt_proj${dir}.weight`), E, bits));
    }
  }
}

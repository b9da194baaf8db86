/**
 * SmoothQuant (QUANT-METHODS.md §4): s_k = a_k^α / w_k^(1−α) moves range from the activation
 * channel k to the weight column k, X·diag(1/s) · (W·diag(s))ᵀ = X·Wᵀ, folded where Vim has an exact fold:
 * - in_proj input: 1/s into the RMSNorm weight γ;
 * - dt_proj input (per direction): 1/s into the dt rows of x_proj (and their bias, if any).
 * a_k = max |x_k| over the calibration set, w_k = max_j |W[j, k]|.
 */
import { DIRECTIONS, mixerPrefix } from '../../model/contract.js';
import { tensor, type FloatModel } from '../../convert/float-model.js';
import { columnAbsMax, scaleColumns, scaleRows } from '../linalg.js';
import type { Calibration } from '../calibrate.js';
import { fail } from '../../errors.js';

const MIN_FACTOR = 1e-5;

/** s_k for one Linear's input; channels that never fire or have zero weights keep s = 1. */
export function smoothingFactors(activationAbsMax: Float64Array, weightAbsMax: Float64Array, alpha: number,
                                 minFactor = MIN_FACTOR): Float64Array {
  return activationAbsMax.map((a, k) => {
    const w = weightAbsMax[k];
    return a > 0 && w > 0 ? Math.max(minFactor, a ** alpha / w ** (1 - alpha)) : 1;
  });
}

export function smoothQuant(m: FloatModel, stats: Calibration, alpha: number): void {
  const { embedDim: D, innerDim: E, dtRank: R, depth } = m.metadata.config;
  const siteMax = (site: string) => (stats.get(site) ?? fail('BAD_ARGUMENT', `no statistics for ${site}`)).channelAbsMax();
  for (let i = 0; i < depth; i++) {
    const p = mixerPrefix(i);
    const wIn = tensor(m, `${p}in_proj.weight`);
    const s = smoothingFactors(siteMax(`${p}in_proj`), columnAbsMax(wIn, 2 * E, D), alpha);
    const gamma = tensor(m, `layers.${i}.norm.weight`);
    s.forEach((v, k) => { gamma[k] /= v; });
    scaleColumns(wIn, 2 * E, D, s);
    for (const dir of DIRECTIONS) {
      const wDt = tensor(m, `${p}dt_proj${dir}.weight`);
      const sDt = smoothingFactors(siteMax(`${p}dt_proj${dir}`), columnAbsMax(wDt, E, R), alpha);
      const inverse = sDt.map((v) => 1 / v);
      scaleRows(tensor(m, `${p}x_proj${dir}.weight`), E, inverse);
      const bias = m.tensors.get(`${p}x_proj${dir}.bias`);
      if (bias) scaleRows(bias.subarray(0, R), 1, inverse);
      scaleColumns(wDt, E, R, sDt);
    }
  }
}

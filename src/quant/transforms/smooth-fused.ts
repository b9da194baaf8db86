/**
 * MambaQuant's smoothing of the out_proj input through the scaled SiLU (QUANT-METHODS.md §9.2, S2):
 * s_k = max(1e-2, √(a_k / w_k)) with a_k = max |g_k| at the out_proj input and w_k = max_j |W_out[j, k]|.
 * The gate rows of in_proj are divided by s (z' = z/s), the gate becomes v·sigmoid(s·v) (`gate_scale`), so
 * ssilu(z') = SiLU(z)/s and the out_proj input arrives as g/s; out_proj's columns are multiplied by s.
 * No online cost beyond the multiply inside the sigmoid. R2 then rotates the smoothed input.
 */
import { mixerPrefix } from '../../model/contract.js';
import { ensureExtra, tensor, type FloatModel } from '../../convert/float-model.js';
import { columnAbsMax, scaleColumns } from '../linalg.js';
import { smoothingFactors } from './smoothquant.js';
import type { Calibration } from '../calibrate.js';
import { fail } from '../../errors.js';

const MIN_FACTOR = 1e-2;

export function smoothFusedGate(m: FloatModel, stats: Calibration): void {
  const { embedDim: D, innerDim: E, depth } = m.metadata.config;
  for (let i = 0; i < depth; i++) {
    const p = mixerPrefix(i);
    const site = stats.get(`${p}out_proj`) ?? fail('BAD_ARGUMENT', `no statistics for ${p}out_proj`);
    const wOut = tensor(m, `${p}out_proj.weight`);
    const s = smoothingFactors(site.channelAbsMax(), columnAbsMax(wOut, D, E), 0.5, MIN_FACTOR);
    const wIn = tensor(m, `${p}in_proj.weight`);
    for (let k = 0; k < E; k++) for (let c = 0; c < D; c++) wIn[(E + k) * D + c] /= s[k];
    ensureExtra(m, 'gate_scale', `${p}gate_scale`, E).set(s);
    scaleColumns(wOut, D, E, s);
  }
}

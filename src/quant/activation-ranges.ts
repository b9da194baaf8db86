/**
 * Static activation quantizers from calibration statistics (QUANT-METHODS.md §2): a clipping
 * range per site (min-max, percentile, or Lp search on the site's histogram), per tensor or per token.
 * Per-token ranges (PTQ4VM's per-token static) are each token position's own extremes over the calibration
 * set, clipped to the site's range, so they combine with any range estimator.
 */
import type { SiteStats } from './site-stats.js';
import type { ActivationRange } from './methods.js';
import { activationQuantizer, lpError, LP_POWER, type Affine } from './quantizer.js';
import { fail } from '../errors.js';

export interface RangeOptions {
  range: ActivationRange;
  percentile?: number;
  granularity: 'tensor' | 'token';
  symmetric: boolean;
  bits: number;
}

const LP_STEPS = 50;   // shrink t = 0, 0.01, ..., 0.49 of the range from both ends (PTQ4VM)

function lpRange(site: SiteStats, bits: number, symmetric: boolean): [number, number] {
  const h = site.histogram ?? fail('BAD_ARGUMENT', 'Lp ranges need a histogram');
  const { values, weights } = h.points();
  let best: [number, number] = [h.min, h.max], bestErr = Infinity;
  for (let i = 0; i < LP_STEPS; i++) {
    const t = i / 100, width = h.max - h.min;
    const range: [number, number] = [h.min + t * width, h.max - t * width];
    const err = lpError(values, activationQuantizer(range[0], range[1], bits, symmetric), LP_POWER, weights);
    if (err < bestErr) [best, bestErr] = [range, err];
  }
  return best;
}

/** The site's clipping range [lo, hi]. */
function tensorRange(site: SiteStats, o: RangeOptions): [number, number] {
  if (o.range === 'mse') return lpRange(site, o.bits, o.symmetric);
  if (o.range === 'percentile') {
    const h = site.histogram ?? fail('BAD_ARGUMENT', 'percentile ranges need a histogram');
    const p = o.percentile ?? fail('BAD_ARGUMENT', 'percentile ranges need a percentile');
    if (o.symmetric) {
      const alpha = h.absQuantile(p);
      return [-alpha, alpha];
    }
    return [h.quantile(1 - p), h.quantile(p)];
  }
  return [Math.min(...site.channelMin), Math.max(...site.channelMax)];
}

/** The quantizers of one site: one (per tensor) or L (per token). */
export function siteQuantizers(site: SiteStats, o: RangeOptions): Affine[] {
  const [lo, hi] = tensorRange(site, o);
  if (o.granularity === 'tensor') return [activationQuantizer(lo, hi, o.bits, o.symmetric)];
  return Array.from(site.tokenMin, (tlo, t) =>
    activationQuantizer(Math.max(lo, tlo), Math.min(hi, site.tokenMax[t]), o.bits, o.symmetric));
}

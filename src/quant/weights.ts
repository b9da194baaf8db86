/**
 * Weight quantization for the integer kernels: a Linear weight W [N, K] gets symmetric codes per output
 * row (q8) or per row and group of 64 inputs (q4g64), the group's scale, and the group's code sum (the
 * GEMM's zero-point correction). src/convert/quantized.ts packs and writes them.
 */
import type { QuantizedWeight } from '../convert/quantized.js';
import { lpError, LP_POWER, quantize, weightQuantizer } from './quantizer.js';

/**
 * How a group's clipping bound is chosen: its max |w|, or the Lp-optimal shrink α = (i/100)·max |w| with
 * p = 2.4 (PTQ4VM). The search is coarse to fine, i = 50, 55, ..., 100 and then the 1% steps around the best:
 * below half the max the clipped weights cost more than the finer step gains at every bit width used here,
 * and 20 candidates instead of 100 keep 4-bit quantization of Vim-Ti-sized models in seconds.
 */
export type WeightRange = 'minmax' | 'mse';

/** The Lp-optimal clipping bound of a group, as a fraction i/100 of its max |w|. */
function lpBound(values: Float32Array, absmax: number, bits: number): number {
  const err = (i: number) => lpError(values, weightQuantizer((i / 100) * absmax, bits), LP_POWER);
  let best = 100, bestErr = err(100);
  for (let i = 50; i < 100; i += 5) {
    const e = err(i);
    if (e < bestErr) [best, bestErr] = [i, e];
  }
  for (let i = Math.max(50, best - 4); i <= Math.min(100, best + 4); i++) {
    const e = err(i);
    if (e < bestErr) [best, bestErr] = [i, e];
  }
  return (best / 100) * absmax;
}

/** Quantizes W [N, K] with `bits`-bit symmetric codes, one scale per row and group of `group` inputs. */
export function quantizeWeight(w: Float32Array, n: number, k: number, bits: number, group: number,
                               range: WeightRange): QuantizedWeight {
  const groups = Math.ceil(k / group);
  const codes = new Int8Array(n * k);
  const scale = new Float32Array(n * groups);
  const sum = new Int32Array(n * groups);
  for (let j = 0; j < n; j++) {
    for (let g = 0; g < groups; g++) {
      const values = w.subarray(j * k + g * group, j * k + Math.min(k, (g + 1) * group));
      let absmax = 0;
      for (const v of values) absmax = Math.max(absmax, Math.abs(v));
      const best = weightQuantizer(range === 'mse' && absmax > 0 ? lpBound(values, absmax, bits) : absmax, bits);
      scale[j * groups + g] = best.scale;
      let s = 0;
      values.forEach((v, i) => {
        const q = quantize(v, best);
        codes[j * k + g * group + i] = q;
        s += q;
      });
      sum[j * groups + g] = s;
    }
  }
  return { n, k, group, codes, scale, sum };
}

/**
 * Weight quantization and packing for the integer kernels (docs/FORMAT.md, layouts q8 and q4g64).
 * A Linear weight W [N, K] gets symmetric codes per output row (q8) or per row and group of 64 inputs
 * (q4g64), the group's scale, and the group's code sum (the GEMM's zero-point correction).
 */
import { alignUp } from '../formats/vimq.js';
import { Q4_GROUP } from '../model/runtime-tensors.js';
import { quantize, symmetricMax, weightQuantizer } from './quantizer.js';

/**
 * How a group's clipping bound is chosen: its max |w|, or the Lp-optimal shrink α = (i/100)·max |w| with
 * p = 2.4 (PTQ4VM). The search is coarse to fine, i = 50, 55, ..., 100 and then the 1% steps around the best:
 * below half the max the clipped weights cost more than the finer step gains at every bit width used here,
 * and 20 candidates instead of 100 keep 4-bit quantization of Vim-Ti-sized models in seconds.
 */
export type WeightRange = 'minmax' | 'mse';

export interface QuantizedWeight {
  n: number;
  k: number;
  group: number;        // inputs per scale: k for per-channel, 64 for q4g64
  codes: Int8Array;     // [N, K] integer codes
  scale: Float32Array;  // [N, G]
  sum: Int32Array;      // [N, G] code sums per group
}

const LP_POWER = 2.4;

/** Σ |w − ŵ|^p over a group for the symmetric quantizer of bound alpha (ties ignored: a search, not a code). */
function groupLpError(values: Float32Array, alpha: number, qmax: number): number {
  const scale = alpha / qmax, inv = 1 / scale;
  let e = 0;
  for (let i = 0; i < values.length; i++) {
    const q = Math.min(qmax, Math.max(-qmax, Math.round(values[i] * inv)));
    const d = values[i] - q * scale;
    e += Math.pow(d * d, LP_POWER / 2);
  }
  return e;
}

/** The Lp-optimal clipping bound of a group, as a fraction i/100 of its max |w|. */
function lpBound(values: Float32Array, absmax: number, qmax: number): number {
  const err = (i: number) => groupLpError(values, (i / 100) * absmax, qmax);
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
      const best = weightQuantizer(range === 'mse' && absmax > 0 ? lpBound(values, absmax, symmetricMax(bits)) : absmax, bits);
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

/** q8: panels of 4 outputs; block kk/4 of a panel holds codes [4p + r, kk + i] at byte 4r + i. */
export function packQ8(codes: Int8Array, n: number, k: number): Uint8Array {
  const kp = alignUp(k, 16);
  const out = new Int8Array(alignUp(n, 4) * kp);
  for (let j = 0; j < n; j++) {
    const panel = (j >> 2) * kp * 4, r = j & 3;
    for (let kk = 0; kk < k; kk++) out[panel + (kk >> 2) * 16 + 4 * r + (kk & 3)] = codes[j * k + kk];
  }
  return new Uint8Array(out.buffer);
}

/**
 * q4g64: panels of 4 outputs; block c (inputs 8c..8c+7) of a panel holds code [4p + r, 8c + i] in the low
 * nibble and [4p + r, 8c + 4 + i] in the high nibble of byte 4r + i, so the two nibble planes are q8 blocks.
 */
export function packQ4(codes: Int8Array, n: number, k: number): Uint8Array {
  const kp = alignUp(k, Q4_GROUP);
  const out = new Uint8Array(alignUp(n, 4) * kp / 2);
  for (let j = 0; j < n; j++) {
    const panel = (j >> 2) * kp * 2, r = j & 3;
    for (let kk = 0; kk < k; kk++) {
      const q = codes[j * k + kk];
      if (q < -8 || q > 7) throw new RangeError(`int4 code ${q} out of range`);
      const byte = panel + (kk >> 3) * 16 + 4 * r + (kk & 3);
      out[byte] |= (kk & 4) ? (q & 15) << 4 : q & 15;
    }
  }
  return out;
}

/**
 * Streaming statistics of one quantization site (the input of one Linear, QUANT-METHODS.md §1),
 * accumulated image by image with memory independent of the number of images: per-channel and per-token
 * extremes always; on request a histogram (percentile / Lp ranges), the covariance in float64 (KLT), and a
 * seeded reservoir of token rows (OS+ scale search).
 */
import { Histogram } from './histogram.js';
import type { Random } from './random.js';

export interface StatsNeeds {
  histogram?: boolean;
  covariance?: boolean;
  /** Token rows to keep, sampled uniformly over all tokens seen. */
  reservoir?: number;
}

export class SiteStats {
  readonly k: number;
  readonly channelMin: Float32Array;   // [K]
  readonly channelMax: Float32Array;   // [K]
  readonly tokenMin: Float32Array;     // [L]
  readonly tokenMax: Float32Array;     // [L]
  readonly histogram?: Histogram;
  private readonly sum?: Float64Array;    // [K]      sum of x
  private readonly outer?: Float64Array;  // [K, K]   sum of x xᵀ (upper triangle)
  readonly reservoir?: Float32Array;      // [capacity, K]
  private readonly capacity: number;
  rows = 0;   // token rows seen

  constructor(tokens: number, k: number, needs: StatsNeeds, private readonly random: Random) {
    this.k = k;
    this.channelMin = new Float32Array(k).fill(Infinity);
    this.channelMax = new Float32Array(k).fill(-Infinity);
    this.tokenMin = new Float32Array(tokens).fill(Infinity);
    this.tokenMax = new Float32Array(tokens).fill(-Infinity);
    if (needs.histogram) this.histogram = new Histogram();
    if (needs.covariance) {
      this.sum = new Float64Array(k);
      this.outer = new Float64Array(k * k);
    }
    this.capacity = needs.reservoir ?? 0;
    if (this.capacity) this.reservoir = new Float32Array(this.capacity * k);
  }

  /** One image's values at this site: x [L, K]. */
  add(x: Float32Array): void {
    const k = this.k, tokens = x.length / k;
    for (let t = 0; t < tokens; t++) {
      let lo = Infinity, hi = -Infinity;
      for (let c = 0; c < k; c++) {
        const v = x[t * k + c];
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
        if (v < this.channelMin[c]) this.channelMin[c] = v;
        if (v > this.channelMax[c]) this.channelMax[c] = v;
      }
      this.tokenMin[t] = Math.min(this.tokenMin[t], lo);
      this.tokenMax[t] = Math.max(this.tokenMax[t], hi);
      if (this.outer) this.addOuter(x.subarray(t * k, (t + 1) * k));
      if (this.reservoir) this.sample(x.subarray(t * k, (t + 1) * k));
      this.rows++;
    }
    this.histogram?.add(x);
  }

  private addOuter(row: Float32Array): void {
    const k = this.k, sum = this.sum!, outer = this.outer!;
    for (let a = 0; a < k; a++) {
      const va = row[a];
      sum[a] += va;
      for (let b = a; b < k; b++) outer[a * k + b] += va * row[b];
    }
  }

  /** Reservoir sampling (Algorithm R): every row seen so far is kept with equal probability. */
  private sample(row: Float32Array): void {
    const slot = this.rows < this.capacity ? this.rows : this.random.int(this.rows + 1);
    if (slot < this.capacity) this.reservoir!.set(row, slot * this.k);
  }

  /** Sampled token rows [min(rows, capacity), K]. */
  sampledRows(): Float32Array {
    return this.reservoir!.subarray(0, Math.min(this.rows, this.capacity) * this.k);
  }

  channelAbsMax(): Float64Array {
    return Float64Array.from(this.channelMin, (lo, c) => Math.max(-lo, this.channelMax[c]));
  }

  /** Covariance [K, K] of the rows, centred, over rows − 1 (float64 throughout). */
  covariance(): Float64Array {
    const k = this.k, n = this.rows, sum = this.sum!, outer = this.outer!;
    const cov = new Float64Array(k * k);
    for (let a = 0; a < k; a++) {
      for (let b = a; b < k; b++) {
        const v = (outer[a * k + b] - (sum[a] * sum[b]) / n) / (n - 1);
        cov[a * k + b] = v;
        cov[b * k + a] = v;
      }
    }
    return cov;
  }
}

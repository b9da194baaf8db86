/**
 * A fixed-size histogram of one site's values over all calibration images (QUANT-METHODS.md §2,
 * percentile and Lp ranges): 2048 equal bins over [−half, half], the range doubled (pairs of bins merged,
 * exactly) whenever a larger |x| arrives, so memory does not grow with the number of images.
 */
const BINS = 2048;   // a multiple of 4: doubling the range merges whole pairs of bins

export class Histogram {
  readonly counts = new Float64Array(BINS);
  private half = 0;
  total = 0;
  min = Infinity;
  max = -Infinity;

  add(values: ArrayLike<number>): void {
    let absmax = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
      absmax = Math.max(absmax, Math.abs(v));
    }
    if (this.half === 0) this.half = absmax > 0 ? absmax : 1e-30;
    while (absmax > this.half) this.double();
    const scale = BINS / (2 * this.half);
    for (let i = 0; i < values.length; i++) {
      this.counts[Math.min(BINS - 1, Math.floor((values[i] + this.half) * scale))]++;
    }
    this.total += values.length;
  }

  /** Range [−2·half, 2·half]: old bin i lands in new bin (i + BINS/2) / 2. */
  private double(): void {
    const old = this.counts.slice();
    this.counts.fill(0);
    for (let i = 0; i < BINS; i++) this.counts[(i + BINS / 2) >> 1] += old[i];
    this.half *= 2;
  }

  private edge(i: number): number {
    return -this.half + (2 * this.half * i) / BINS;
  }

  /** The q-quantile of the values (linear inside a bin), clamped to the observed [min, max]. */
  quantile(q: number): number {
    const target = q * this.total;
    let below = 0;
    for (let i = 0; i < BINS; i++) {
      const c = this.counts[i];
      if (c > 0 && below + c >= target) {
        const v = this.edge(i) + ((target - below) / c) * (this.edge(i + 1) - this.edge(i));
        return Math.min(this.max, Math.max(this.min, v));
      }
      below += c;
    }
    return this.max;
  }

  /** The q-quantile of |x|. */
  absQuantile(q: number): number {
    const target = q * this.total;
    let below = 0;
    for (let d = 0; d < BINS / 2; d++) {
      const c = this.counts[BINS / 2 + d] + this.counts[BINS / 2 - 1 - d];
      if (c > 0 && below + c >= target) {
        const v = this.edge(BINS / 2 + d) + ((target - below) / c) * (this.half / (BINS / 2));
        return Math.min(Math.max(this.max, -this.min), v);
      }
      below += c;
    }
    return Math.max(this.max, -this.min);
  }

  /** Bin centres and counts of the non-empty bins: the data of an Lp range search. */
  points(): { values: Float64Array; weights: Float64Array } {
    const values: number[] = [], weights: number[] = [];
    for (let i = 0; i < BINS; i++) {
      if (this.counts[i] === 0) continue;
      values.push(Math.min(this.max, Math.max(this.min, (this.edge(i) + this.edge(i + 1)) / 2)));
      weights.push(this.counts[i]);
    }
    return { values: Float64Array.from(values), weights: Float64Array.from(weights) };
  }
}

// The quantizer primitives: rounding, affine parameters, range estimators on the streaming histogram,
// weight codes and scales, and the streaming site statistics, each against a direct computation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rng } from './helpers/kernels.js';
import { activationQuantizer, fakeQuantize, quantize, roundHalfEven, weightQuantizer } from '../src/quant/quantizer.js';
import { Histogram } from '../src/quant/histogram.js';
import { SiteStats } from '../src/quant/site-stats.js';
import { siteQuantizers } from '../src/quant/activation-ranges.js';
import { quantizeWeight } from '../src/quant/weights.js';
import { seededRandom, sampleIndices } from '../src/quant/random.js';

test('roundHalfEven: ties go to the even neighbour, like torch.round and f32.nearest', () => {
  assert.equal([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, -7].map(roundHalfEven), [0, 2, 2, -0, -2, -2, 2, 3, -7]);
});

test('activation quantizer: the range is extended to 0, 0 is a code, the ends map to qmin/qmax', () => {
  const a = activationQuantizer(0.5, 3, 8, false);      // extended to [0, 3]
  assert.is(fakeQuantize(0, a), 0);
  assert.is(quantize(0, a), a.zero);
  assert.is(quantize(0, a), -128);
  assert.is(quantize(3, a), 127);
  const b = activationQuantizer(-2, 6, 8, false);
  assert.is(fakeQuantize(0, b), 0);
  assert.ok(Math.abs(fakeQuantize(-2, b) + 2) <= b.scale / 2 && Math.abs(fakeQuantize(6, b) - 6) <= b.scale / 2);
  const s = activationQuantizer(-2, 6, 8, true);
  assert.is(s.zero, 0);
  assert.is(s.scale, Math.fround(6 / 127));
  const w = weightQuantizer(0.7, 4);
  assert.equal([w.qmin, w.qmax], [-7, 7]);
  assert.is(quantize(-0.7, w), -7);
  assert.is(quantize(5, w), 7);
});

test('histogram: quantiles within one bin of the sorted data, across range doublings', () => {
  // In the tails the samples are sparser than the bins, so the check is on rank: the fraction of the data
  // below the estimate may differ from q by at most one bin's share (the estimate interpolates in one bin).
  const r = rng(1);
  const h = new Histogram();
  const all: number[] = [];
  for (let batch = 0; batch < 20; batch++) {
    const scale = 2 ** (batch / 4);                    // the range keeps growing: forces re-binning
    const x = Array.from({ length: 2000 }, () => r.normal() * scale + 0.3);
    h.add(x);
    all.push(...x);
  }
  const n = all.length, binShare = Math.max(...h.counts) / n + 1 / n;
  const rank = (v: number) => all.filter((x) => x <= v).length / n;
  for (const q of [0.001, 0.1, 0.5, 0.9, 0.999, 0.99999]) {
    assert.ok(Math.abs(rank(h.quantile(q)) - q) <= binShare, `q ${q}: rank ${rank(h.quantile(q))}`);
  }
  const abs = all.map(Math.abs);
  const absRank = abs.filter((x) => x <= h.absQuantile(0.999)).length / n;
  assert.ok(Math.abs(absRank - 0.999) <= 2 * binShare, `|x| rank ${absRank}`);
  assert.is(h.total, n);
  assert.is(h.quantile(1), Math.max(...all));
  assert.is(h.counts.reduce((a, b) => a + b, 0), n);
});

test('site statistics: extremes, covariance (float64) and reservoir against direct computation', () => {
  const r = rng(2);
  const L = 5, K = 3;
  const stats = new SiteStats(L, K, { covariance: true, reservoir: 7, histogram: true }, seededRandom(0));
  const rows: number[][] = [];
  for (let img = 0; img < 4; img++) {
    const x = r.normals(L * K);
    for (let t = 0; t < L; t++) { x[t * K] += 3; x[t * K + 1] *= 1 + t; }
    stats.add(x);
    for (let t = 0; t < L; t++) rows.push(Array.from(x.subarray(t * K, t * K + K)));
  }
  const n = rows.length;
  const mean = [0, 1, 2].map((c) => rows.reduce((s, row) => s + row[c], 0) / n);
  const cov = stats.covariance();
  for (let a = 0; a < K; a++) {
    for (let b = 0; b < K; b++) {
      const want = rows.reduce((s, row) => s + (row[a] - mean[a]) * (row[b] - mean[b]), 0) / (n - 1);
      assert.ok(Math.abs(cov[a * K + b] - want) < 1e-12, `cov[${a}, ${b}]`);
    }
  }
  assert.is(stats.channelMax[1], Math.max(...rows.map((row) => row[1])));
  assert.is(stats.tokenMin[4], Math.min(...rows.filter((_, i) => i % L === 4).flat()));
  assert.is(stats.sampledRows().length, 7 * K);
  const kept = new Set(rows.map((row) => row.join()));
  for (let i = 0; i < 7; i++) assert.ok(kept.has(Array.from(stats.sampledRows().subarray(i * K, i * K + K)).join()));
});

test('per-token static ranges: one quantizer per token, clipped to the site range', () => {
  const stats = new SiteStats(3, 2, { histogram: true }, seededRandom(0));
  stats.add(Float32Array.of(-1, 1, 0, 10, -5, 2));
  const perToken = siteQuantizers(stats, { range: 'minmax', granularity: 'token', symmetric: false, bits: 8 });
  assert.is(perToken.length, 3);
  assert.equal(perToken.map((a) => a.scale), [2 / 255, 10 / 255, 7 / 255].map(Math.fround));
  const [one] = siteQuantizers(stats, { range: 'minmax', granularity: 'tensor', symmetric: false, bits: 8 });
  assert.is(one.scale, Math.fround(15 / 255));
  const mse = siteQuantizers(stats, { range: 'mse', granularity: 'tensor', symmetric: false, bits: 8 });
  assert.ok(mse[0].scale <= one.scale);
});

for (const [bits, group] of [[8, 37], [4, 64], [4, 16]] as const) {
  test(`weights ${bits}-bit, groups of ${group}: codes in range, |w − ŵ| <= step/2 (min-max), sums, Lp no worse`, () => {
    const r = rng(bits + group);
    const n = 5, k = 37 + (group === 64 ? 64 : 0);
    const w = r.normals(n * k);
    w[3] = 9;   // an outlier weight
    const q = quantizeWeight(w, n, k, bits, group, 'minmax');
    const groups = Math.ceil(k / group), qmax = 2 ** (bits - 1) - 1;
    let errMinmax = 0;
    for (let j = 0; j < n; j++) {
      for (let c = 0; c < k; c++) {
        const code = q.codes[j * k + c], scale = q.scale[j * groups + Math.floor(c / group)];
        assert.ok(Math.abs(code) <= qmax);
        assert.ok(Math.abs(w[j * k + c] - code * scale) <= scale / 2 * (1 + 1e-6));
        errMinmax += Math.abs(w[j * k + c] - code * scale) ** 2.4;
      }
      for (let g = 0; g < groups; g++) {
        let s = 0;
        for (let c = g * group; c < Math.min(k, (g + 1) * group); c++) s += q.codes[j * k + c];
        assert.is(q.sum[j * groups + g], s);
      }
    }
    const lp = quantizeWeight(w, n, k, bits, group, 'mse');
    let errLp = 0;
    for (let j = 0; j < n; j++) {
      for (let c = 0; c < k; c++) errLp += Math.abs(w[j * k + c] - lp.codes[j * k + c] * lp.scale[j * groups + Math.floor(c / group)]) ** 2.4;
    }
    assert.ok(errLp <= errMinmax * (1 + 1e-9), `Lp ${errLp} > min-max ${errMinmax}`);
  });
}

test('sampleIndices: seeded, distinct, repeatable', () => {
  const a = sampleIndices(1000, 256, seededRandom(5)), b = sampleIndices(1000, 256, seededRandom(5));
  assert.equal(a, b);
  assert.is(new Set(a).size, 256);
  assert.not.equal(a, sampleIndices(1000, 256, seededRandom(6)));
});

test.run();

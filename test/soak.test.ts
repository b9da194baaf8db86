// A short soak in CI (test/helpers/soak.ts; bench/soak.ts runs the long one): 1,000 requests through the
// Node classifier, one in ten a damaged image, every answer bit-identical to the first for its image, and
// memory flat: no growth of WebAssembly memory after warm-up, ArrayBuffer memory (decoded images, logits) with
// no trend, the V8 heap and RSS without a slope a leak would give.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runSoak, slope, summary } from './helpers/soak.js';

test('least-squares slope', () => {
  assert.is(slope([0, 1, 2, 3], [5, 7, 9, 11]), 2);
  assert.is(slope([0, 1, 2], [4, 4, 4]), 0);
});

test('1,000 classifications in one process: flat memory, stable answers, damaged images refused', async () => {
  const r = await runSoak({ count: 1000, every: 50, warmup: 300 });
  console.log(summary(r));
  assert.is(r.classified + r.refused, 1000);
  assert.is(r.refused, 100);
  // The model's memory is planned once: not one page more after warm-up.
  assert.is(r.wasm.max, r.wasm.atWarmup);
  assert.is(r.wasm.atEnd, r.wasm.atWarmup);
  // After full collections, retained buffers show exactly; a leaked logits array (40 bytes) would show.
  assert.ok(Math.abs(r.slope.arrayBuffers) < 16, `ArrayBuffers slope ${r.slope.arrayBuffers} B/classification`);
  assert.ok(Math.abs(r.slope.external) < 64, `external slope ${r.slope.external} B/classification`);
  // The V8 heap moves by ±100 kB between samples (code, feedback): up to ~400 B/classification over 500
  // requests here, under 1 B over 10,000. So CI catches heap leaks above 2 kB a request; the 10,000-request
  // run of bench/soak.ts resolves the smaller ones.
  assert.ok(r.slope.heapUsed < 2048, `V8 heap slope ${r.slope.heapUsed} B/classification`);
  // RSS moves in allocator steps of a few MB; a real leak of a decoded image per request would be >100 kB.
  assert.ok(r.slope.rss < 64 * 1024, `RSS slope ${r.slope.rss} B/classification`);
  assert.ok(r.rss.atEnd - r.rss.atWarmup < 64 * 2 ** 20, `RSS grew ${(r.rss.atEnd - r.rss.atWarmup) / 2 ** 20} MB`);
});

test.run();

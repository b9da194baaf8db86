// Splitting one image over threads (src/model/parallel.ts, src/hosts/node-threads.ts): the logits must be
// bit-identical to the single-threaded run, for fp32, W8A8 with the online Hadamard (mambaquant), W8A8
// with per-token and dynamic activation ranges, and W4A8, at 2 and 3 threads, on the real-shape Vim-Tiny
// (197 rows: the row split is uneven and not a multiple of 4) and on the small fixture. Identity, not a
// tolerance: every row runs the same kernel code whatever thread computes it. An Observer sees the same
// activations at every thread count, and observing leaves the logits bit-identical.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from './helpers/rejects.js';
import { dumpObserver } from './helpers/golden.js';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { calibrationSet, inputs, fixtureModel, fixtureVimq } from './helpers/quant.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';
import { loadModel } from '../src/model/model-file.js';
import { convertCheckpoint } from '../src/convert/checkpoint.js';
import { quantizeModel, type QuantizeOptions } from '../src/quant/quantize-model.js';
import { createNodeThreads } from '../src/hosts/node-threads.js';
import { rowRange } from '../src/model/parallel.js';
import { loadClassifier } from '../src/index.js';
import { webHost } from '../src/hosts/web.js';

function identical(got: Float32Array, want: Float32Array, what: string): void {
  assert.is(got.length, want.length, what);
  for (let j = 0; j < got.length; j++) {
    if (got[j] !== want[j]) assert.unreachable(`${what} [${j}]: ${got[j]} != ${want[j]}`);
  }
}

async function sameAtEveryThreadCount(file: Uint8Array, xs: Float32Array[]): Promise<void> {
  const wasm = await readKernelWasm();
  const single = (await loadModel(file, 'm.vimq', wasm)).model;
  const want = xs.map((x) => single.forward(x));
  const seen = dumpObserver();
  single.forward(xs[0], seen.observer);
  for (const count of [2, 3]) {
    const threads = await createNodeThreads(count);
    try {
      const model = (await loadModel(file, 'm.vimq', wasm, {}, threads)).model;
      for (let round = 0; round < 2; round++) {   // twice: the second reuses the planned buffers, and observes
        xs.forEach((x, i) => {
          const observed = round === 1 && i === 0 ? dumpObserver() : undefined;
          identical(model.forward(x, observed?.observer), want[i], `${count} threads, input ${i}, logits`);
          for (const [name, values] of observed ? seen.dumps : []) {
            const got = observed!.dumps.get(name);
            assert.ok(got, `${count} threads: ${name} not observed`);
            identical(got!, values, `${count} threads, ${name}`);
          }
        });
      }
    } finally {
      threads.pool.dispose();
    }
  }
}

test('rowRange covers every row once, on multiples of 4', () => {
  for (const rows of [1, 3, 17, 50, 197]) {
    for (const parts of [1, 2, 3, 4, 7]) {
      let next = 0;
      for (let i = 0; i < parts; i++) {
        const [a, b] = rowRange(rows, parts, i);
        assert.is(a, next);
        assert.ok(b >= a && (b === rows || b % 4 === 0), `${rows}/${parts} part ${i}: [${a}, ${b})`);
        next = b;
      }
      assert.is(next, rows);
    }
  }
});

test('fp32 small fixture: identical logits at 1, 2 and 3 threads', async () => {
  await sameAtEveryThreadCount(await fixtureVimq(), inputs(3, 11));
});

const QUANTIZED: [string, Partial<QuantizeOptions>][] = [
  ['W8A8 mambaquant', { method: 'mambaquant', bits: 'w8a8' }],
  ['W8A8 per-token ranges', { method: 'mambaquant', bits: 'w8a8', granularity: 'token' }],
  ['W8A8 dynamic ranges', { method: 'rtn', bits: 'w8a8', granularity: 'dynamic' }],
  ['W4A8 mambaquant', { method: 'mambaquant', bits: 'w4a8' }],
];
for (const [name, options] of QUANTIZED) {
  test(`${name} small fixture: identical logits at 1, 2 and 3 threads`, async () => {
    const { file } = await quantizeModel(await fixtureModel(), calibrationSet(16), await readKernelWasm(), { seed: 0, ...options } as QuantizeOptions);
    await sameAtEveryThreadCount(file, inputs(3, 12));
  });
}

const TINY = 'test/fixtures/generated/tiny/model.pth';
test('real-shape Vim-Tiny 224 (197 tokens), fp32: identical logits at 1, 2 and 3 threads', async () => {
  if (!existsSync(TINY)) assert.unreachable(`${TINY} is missing: run scripts/make-fixtures.sh`);
  const file = await convertCheckpoint(await readFile(TINY), TINY);
  await sameAtEveryThreadCount(file, [Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.37))]);
});

test('public API: { threads: 2 } gives the same scores; bad counts and threads with a custom wasm are refused', async () => {
  const file = await fixtureVimq();
  const image = { width: 20, height: 20, channels: 1 as const, data: Uint8Array.from({ length: 400 }, (_, i) => (i * 37) % 256) };
  const one = await loadClassifier(file);
  const two = await loadClassifier(file, { threads: 2 });
  try {
    assert.equal(await two.classify(image, { topK: 10 }), await one.classify(image, { topK: 10 }));
  } finally {
    one.dispose();
    two.dispose();
  }
  for (const threads of [0, 1.5, -2, 257, Number.NaN]) {
    await rejects(() => loadClassifier(file, { threads }), 'BAD_ARGUMENT', /threads must be an integer from 1 to 256/);
  }
  const wasm = await readKernelWasm();
  await rejects(() => loadClassifier(file, { threads: 2, wasm }), 'BAD_ARGUMENT', /leave out wasm/);
  const web = webHost({ wasm: () => wasm, jpeg: () => wasm, webp: () => wasm });
  await rejects(() => web(file, { threads: 2 }), 'BAD_ARGUMENT', /available on Node only/);
});

test.run();

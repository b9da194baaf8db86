// Splitting one image over threads (src/model/parallel.ts, src/hosts/node-threads.ts): the logits must be
// bit-identical to the single-threaded run, for fp32, W8A8 with the online Hadamard (mambaquant), W8A8
// with per-token and dynamic activation ranges, and W4A8, at 2, 3, 5 and 8 threads (more threads than this
// machine has cores is fine: they take turns), on the real-shape Vim-Tiny (197 rows and 384 channels a
// direction: uneven shares) and on the small fixture. Identity, not a tolerance: every row and every channel
// runs the same kernel code whatever thread computes it. An Observer sees the same
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
import { shareRange } from '../src/model/parallel.js';
import { loadClassifier } from '../src/index.js';
import { webHost } from '../src/hosts/web.js';
import { createWebThreads } from '../src/hosts/web-threads.js';

function identical(got: Float32Array, want: Float32Array, what: string): void {
  assert.is(got.length, want.length, what);
  for (let j = 0; j < got.length; j++) {
    if (got[j] !== want[j]) assert.unreachable(`${what} [${j}]: ${got[j]} != ${want[j]}`);
  }
}

const THREAD_COUNTS = [2, 3, 5, 8];

async function sameAtEveryThreadCount(file: Uint8Array, xs: Float32Array[], counts = THREAD_COUNTS): Promise<void> {
  const wasm = await readKernelWasm();
  const single = (await loadModel(file, 'm.vimq', wasm)).model;
  const want = xs.map((x) => single.forward(x));
  const seen = dumpObserver();
  single.forward(xs[0], seen.observer);
  for (const count of counts) {
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

test('shareRange covers every unit once, on multiples of the grain, shares within one grain of each other', () => {
  for (const units of [1, 3, 17, 50, 197, 394, 768]) {
    for (const parts of [1, 2, 3, 4, 5, 7, 8]) {
      for (const grain of [1, 4]) {
        let next = 0;
        const sizes: number[] = [];
        for (let i = 0; i < parts; i++) {
          const [a, b] = shareRange(units, parts, i, grain);
          assert.is(a, next);
          assert.ok(b >= a && (b === units || b % grain === 0), `${units}/${parts}/${grain} part ${i}: [${a}, ${b})`);
          sizes.push(b - a);
          next = b;
        }
        assert.is(next, units);
        if (units % grain === 0) assert.ok(Math.max(...sizes) - Math.min(...sizes) <= grain, `${units}/${parts}/${grain}: ${sizes}`);
      }
    }
  }
});

test('fp32 small fixture: identical logits at 1, 2, 3, 5 and 8 threads', async () => {
  await sameAtEveryThreadCount(await fixtureVimq(), inputs(3, 11));
});

const QUANTIZED: [string, Partial<QuantizeOptions>][] = [
  ['W8A8 mambaquant', { method: 'mambaquant', bits: 'w8a8' }],
  ['W8A8 per-token ranges', { method: 'mambaquant', bits: 'w8a8', granularity: 'token' }],
  ['W8A8 dynamic ranges', { method: 'rtn', bits: 'w8a8', granularity: 'dynamic' }],
  ['W4A8 mambaquant', { method: 'mambaquant', bits: 'w4a8' }],
];
for (const [name, options] of QUANTIZED) {
  test(`${name} small fixture: identical logits at 1, 2, 3, 5 and 8 threads`, async () => {
    const { file } = await quantizeModel(await fixtureModel(), calibrationSet(16), await readKernelWasm(), { seed: 0, ...options } as QuantizeOptions);
    await sameAtEveryThreadCount(file, inputs(3, 12));
  });
}

const TINY = 'test/fixtures/generated/tiny/model.pth';
test('real-shape Vim-Tiny 224 (197 tokens), fp32: identical logits at 1, 2, 3, 5 and 8 threads', async () => {
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
  await rejects(() => web.loadClassifier(file, { threads: 2 }), 'BAD_ARGUMENT', /threads > 1 needs Web Workers; this host runs one thread/);
});

test('web threads: a page that is not cross-origin isolated, or a host without Web Workers, is told so', async () => {
  const module = await WebAssembly.compile(await readKernelWasm({ threads: true }) as Uint8Array<ArrayBuffer>);
  const g = globalThis as { Worker?: unknown; crossOriginIsolated?: boolean };
  await rejects(() => createWebThreads(2, module, 'thread.js'), 'BAD_ARGUMENT', /needs SharedArrayBuffer and Web Workers: this host has no Web Workers/);
  g.Worker = class {};
  g.crossOriginIsolated = false;
  try {
    await rejects(() => createWebThreads(2, module, 'thread.js'), 'BAD_ARGUMENT', /the page is not cross-origin isolated \(serve it with Cross-Origin-Opener-Policy: same-origin/);
  } finally {
    delete g.Worker;
    delete g.crossOriginIsolated;
  }
  g.Worker = class {};
  try {
    const plain = await WebAssembly.compile(await readKernelWasm() as Uint8Array<ArrayBuffer>);
    await rejects(() => createWebThreads(2, plain, 'thread.js'), 'BAD_ARGUMENT', /needs the kernels' threads build \(vimedge\.mt\.wasm\)/);
  } finally {
    delete g.Worker;
  }
});

test.run();

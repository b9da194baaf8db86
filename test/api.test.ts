// The public API on Node (src/index.ts): sources (path, file: URL, bytes, checkpoint), images (path, URL,
// bytes, decoded pixels), topK, info, dispose, and bad input as one-line VimedgeErrors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { decodeImage, loadClassifier, type NodeClassifier } from '../src/index.js';
import { decodeImageBytes } from '../src/hosts/node-decode.js';
import { FIVE_IMAGES, LABELS, prepareModel } from './helpers/hosts.js';
import { rejects } from './helpers/rejects.js';

let model: { dir: string; file: string };
let clf: NodeClassifier;
const image = FIVE_IMAGES[0];

test.before(async () => {
  model = await prepareModel();
  clf = await loadClassifier(model.file);
});
test.after(() => rmSync(model.dir, { recursive: true, force: true }));

test('classify: top-5 { label, index, score }, best first, scores summing below 1', async () => {
  const top = await clf.classify(image);
  assert.is(top.length, 5);
  for (const p of top) {
    assert.equal(Object.keys(p).sort(), ['index', 'label', 'score']);
    assert.is(p.label, LABELS[p.index]);
  }
  for (let i = 1; i < top.length; i++) assert.ok(top[i - 1].score >= top[i].score);
  assert.ok(top.reduce((a, p) => a + p.score, 0) < 1);
  const all = await clf.classify(image, { topK: 100 });
  assert.is(all.length, 10);
  assert.ok(Math.abs(all.reduce((a, p) => a + p.score, 0) - 1) < 1e-12);
  assert.equal((await clf.classify(image, { topK: 1 }))[0], top[0]);
});

test('every image form gives the same answer: path, file: URL, bytes, ArrayBuffer, decoded pixels', async () => {
  const want = await clf.classify(image);
  const bytes = new Uint8Array(readFileSync(image));
  assert.equal(await clf.classify(pathToFileURL(image)), want);
  assert.equal(await clf.classify(pathToFileURL(image).href), want);
  assert.equal(await clf.classify(bytes), want);
  assert.equal(await clf.classify(bytes.slice().buffer), want);
  assert.equal(await clf.classify(await decodeImageBytes(bytes, 'x')), want);
  const logits = await clf.logits(image);
  assert.is(logits.length, 10);
  assert.is(want[0].index, logits.indexOf(Math.max(...logits)));
});

test('decodeImage: the pixels classify sees, from every image form; its pixel limit; bad options', async () => {
  const bytes = new Uint8Array(readFileSync(image));
  const pixels = await decodeImage(image);
  assert.equal(pixels, await decodeImageBytes(bytes, image));
  assert.equal(await decodeImage(bytes), pixels);
  assert.equal(await decodeImage(pathToFileURL(image)), pixels);
  assert.equal(await decodeImage(pixels), pixels);
  assert.equal(await clf.classify(pixels), await clf.classify(image));
  const size = pixels.width * pixels.height;
  await rejects(decodeImage(image, { maxPixels: size - 1 }), 'BAD_IMAGE', `limit of ${size - 1}`);
  assert.is((await decodeImage(image, { maxPixels: size })).width, pixels.width);
  await rejects(decodeImage(image, { maxPixels: 0 }), 'BAD_ARGUMENT', 'maxPixels');
  await rejects(decodeImage(image, null as never), 'BAD_ARGUMENT', 'decodeImage options must be an object');
  await rejects(decodeImage(42 as never), 'BAD_IMAGE', 'expected a path');
});

test('model sources: bytes, file: URL and a .pth checkpoint converted on the fly give the same model', async () => {
  const want = await clf.classify(image);
  for (const source of [new Uint8Array(readFileSync(model.file)), pathToFileURL(model.file)]) {
    const other = await loadClassifier(source);
    assert.equal(await other.classify(image), want);
    other.dispose();
  }
  const pth = await loadClassifier('test/fixtures/small/small/model.pth', { convert: { labels: LABELS } });
  assert.equal(await pth.classify(image), want);
});

test('info: labels, config and preprocessing, no tensor table', () => {
  assert.equal(clf.info.labels, LABELS);
  assert.is(clf.info.config.imageSize, 64);
  assert.is(clf.info.preprocess.crop, 64);
  assert.ok(clf.info.memoryBytes > 0);
  assert.not.ok('tensors' in clf.info);
});

test('bad input: one-line VimedgeErrors with codes', async () => {
  await rejects(clf.classify(image, { topK: 0 }), 'BAD_ARGUMENT', /topK must be a positive integer/);
  // Options are checked before the image is read or decoded.
  await rejects(clf.classify('no/such/image.png', { topK: 1.5 }), 'BAD_ARGUMENT', /topK must be a positive integer, got 1.5/);
  await rejects(clf.classify(image, { maxPixels: 100 }), 'BAD_IMAGE', /over the limit of 100/);
  await rejects(clf.classify('no/such/image.png'), 'BAD_IMAGE', /no such file/);
  await rejects(clf.classify(new Uint8Array([1, 2, 3])), 'BAD_IMAGE', /not a readable image/);
  await rejects(clf.classify(42 as never), 'BAD_IMAGE', /expected a path/);
  await rejects(loadClassifier('no/such/model.vimq'), 'BAD_ARGUMENT', /no such file/);
  await rejects(loadClassifier(new Uint8Array(16)), 'BAD_CHECKPOINT', /./);
  await rejects(loadClassifier(model.file, { wasm: new Uint8Array([0, 1, 2]) }), 'BAD_ARGUMENT', /not valid WebAssembly/);
});

test('dispose: later calls reject, and the memory is no longer held', async () => {
  const other = await loadClassifier(model.file);
  assert.is(other.info.memoryBytes, clf.info.memoryBytes);
  other.dispose();
  other.dispose();
  await rejects(other.classify(image), 'BAD_ARGUMENT', /disposed/);
  await rejects(other.logits(image), 'BAD_ARGUMENT', /disposed/);
  // Read when asked (test/soak.test.ts watches it stay flat), not a copy taken at load time.
  assert.is(other.info.memoryBytes, 0);
});

test.run();


// The one input contract (src/api.ts `ImageInput`, src/hosts/image-input.ts) on Node (src/index.ts) and on
// the web build (src/hosts/browser.ts, run here under Node): every image form gives the same logits, bit for
// bit within a host; batches equal single calls; `{ logits: true }` is one forward pass; `embed` is the
// PyTorch reference's final-normed class token and the head over it gives the logits; unknown option names
// are refused, nested ones included; loading reports progress and stops on an AbortSignal; Symbol.dispose.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { pathToFileURL } from 'node:url';
import { loadClassifier, preprocess, type ImageInput, type LoadProgress, type NodeClassifier } from '../src/index.js';
import { loadClassifier as loadWeb } from '../src/hosts/browser.js';
import { decodeImageBytes } from '../src/hosts/node-decode.js';
import { readCheckpoint } from '../src/formats/checkpoint.js';
import { VimModel } from '../src/model/vim-model.js';
import { IMAGES_DIR, LABELS, prepareModel } from './helpers/hosts.js';
import { golden } from './helpers/golden.js';
import { relErr } from './helpers/kernels.js';
import { rejects } from './helpers/rejects.js';

const PNG = `${IMAGES_DIR}/coffee_portrait_233x349.png`;
const PNG_BYTES = new Uint8Array(readFileSync(PNG));
const JPEG = `${IMAGES_DIR}/astronaut_400x300.jpg`;

let model: { dir: string; file: string };
let clf: NodeClassifier;
/** A local server: /model (with Content-Length), /model-chunked (without), /slow (first 1 kB, then silence), /image.png. */
let server: Server;
let base: string;

test.before(async () => {
  model = await prepareModel();
  clf = await loadClassifier(model.file);
  const modelBytes = readFileSync(model.file);
  server = createServer((req, res) => {
    if (req.url === '/model') res.writeHead(200, { 'content-length': modelBytes.length }).end(modelBytes);
    else if (req.url === '/model-chunked') { res.writeHead(200); res.write(modelBytes.subarray(0, 4096)); res.end(modelBytes.subarray(4096)); }
    else if (req.url === '/slow') { res.writeHead(200, { 'content-length': modelBytes.length }); res.write(modelBytes.subarray(0, 1024)); }
    else if (req.url === '/image.png') res.writeHead(200).end(PNG_BYTES);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
test.after(() => {
  server.closeAllConnections();
  server.close();
  rmSync(model.dir, { recursive: true, force: true });
});

/** The RGB pixels as RGBA with a varying alpha, which must be dropped (PIL convert('RGB')), not composited. */
function rgba(rgb: { width: number; height: number; data: Uint8Array }): Uint8ClampedArray {
  const out = new Uint8ClampedArray(rgb.width * rgb.height * 4);
  for (let i = 0; i < rgb.width * rgb.height; i++) {
    out.set(rgb.data.subarray(3 * i, 3 * i + 3), 4 * i);
    out[4 * i + 3] = i % 256;
  }
  return out;
}

/** Every form of the contract a host without files takes, for the coffee PNG. */
async function portableForms(): Promise<[string, ImageInput][]> {
  const pixels = await decodeImageBytes(PNG_BYTES, 'png');
  const { width, height } = pixels;
  return [
    ['bytes', PNG_BYTES],
    ['ArrayBuffer', PNG_BYTES.slice().buffer],
    ['Blob', new Blob([PNG_BYTES])],
    ['File', new File([PNG_BYTES], 'coffee.png', { type: 'image/png' })],
    ['Response', new Response(PNG_BYTES)],
    ['http: URL', new URL(`${base}/image.png`)],
    ['RGB pixels', pixels],
    ['RGBA pixels (channels 4)', { width, height, channels: 4, data: rgba(pixels) }],
    ['ImageData-shaped (RGBA, no channels)', { width, height, data: rgba(pixels) }],
    ['preprocessed Float32Array', preprocess(pixels, clf.info.preprocess)],
  ];
}

test('Node: every image form gives the same logits, bit for bit', async () => {
  const want = await clf.logits(PNG);
  const forms: [string, ImageInput][] = [['path', PNG], ['file: URL', pathToFileURL(PNG)], ['file: URL string', pathToFileURL(PNG).href],
    ['http: URL string', `${base}/image.png`], ...await portableForms()];
  for (const [what, image] of forms) assert.equal(await clf.logits(image), want, what);
  // RGBA from a JPEG too (sharp decodes it; the web hosts' MozJPEG may differ by a level, so only here).
  const jpeg = await decodeImageBytes(new Uint8Array(readFileSync(JPEG)), 'jpeg');
  assert.equal(await clf.logits({ ...jpeg, channels: 4, data: rgba(jpeg) }), await clf.logits(JPEG));
});

test('web build (under Node): every form it takes gives the same logits, bit for bit, and Node\'s to 1e-5', async () => {
  const web = await loadWeb(readFileSync(model.file));
  try {
    const want = await web.logits(PNG_BYTES);
    for (const [what, image] of await portableForms()) assert.equal(await web.logits(image), want, what);
    // Node may run the relaxed-SIMD kernels (another summation order): equal to float32 rounding, not bits.
    assert.ok(relErr(want, await clf.logits(PNG)) < 1e-5);
  } finally {
    web.dispose();
  }
});

test('a preprocessed Float32Array must be [C, H, W] of the model, finite', async () => {
  await rejects(clf.classify(new Float32Array(5)), 'BAD_ARGUMENT', /\[C, H, W\] = \[3, 64, 64\] = 12288 values, got 5/);
  await rejects(clf.classify(new Float32Array(12288).fill(NaN)), 'BAD_IMAGE', /NaN or Inf/);
  await rejects(clf.classify({ width: 2, height: 2, channels: 4, data: new Uint8Array(12) }), 'BAD_IMAGE', /expected channels 1, 3 or 4/);
  await rejects(clf.classify({ width: 2, height: 2, data: new Uint8Array(16) }, { maxPixels: 3 }), 'BAD_IMAGE', /over the limit of 3/);
  rejects(() => preprocess({ width: 1, height: 1 } as never, clf.info.preprocess), 'BAD_IMAGE', /expected pixels/);
});

test('classify(images[]) equals one call per image, with and without logits; embed too; a bad image is named by index', async () => {
  const images = [PNG, JPEG, PNG_BYTES];
  const singles = await Promise.all(images.map((i) => clf.classify(i, { topK: 3 })));
  assert.equal(await clf.classify(images, { topK: 3 }), singles);
  const both = await clf.classify(images, { topK: 3, logits: true });
  assert.equal(both.map((b) => b.predictions), singles);
  for (const [i, b] of both.entries()) assert.equal(b.logits, await clf.logits(images[i]));
  assert.equal(await clf.embed(images), await Promise.all(images.map((i) => clf.embed(i))));
  assert.equal(await clf.classify([]), []);
  await rejects(clf.classify([PNG, 'no/such.png']), 'BAD_IMAGE', /^images\[1\]: no\/such\.png: no such file/);
});

test('{ topK, logits: true }: predictions and logits from one forward pass', async () => {
  const forward = VimModel.prototype.forward;
  let calls = 0;
  VimModel.prototype.forward = function (...args) {
    calls++;
    return forward.apply(this, args);
  };
  try {
    const { predictions, logits } = await clf.classify(PNG, { topK: 3, logits: true });
    assert.is(calls, 1);
    assert.equal(predictions, await clf.classify(PNG, { topK: 3 }));
    assert.equal(logits, await clf.logits(PNG));
    assert.is(calls, 3);
  } finally {
    VimModel.prototype.forward = forward;
  }
});

test('embed: the PyTorch reference\'s final-normed class token; the head over it gives the logits', async () => {
  const g = golden('test/fixtures/small/small')!;
  const fixture = await loadClassifier(g.bytes('model.pth'), { convert: { labels: LABELS } });
  const input = g.manifest.inputs[g.manifest.dumps.input];
  const features = await fixture.embed(g.f32(input.file));
  assert.is(features.length, fixture.info.config.embedDim);
  // Float32 against the float64 reference, after two blocks: test/forward.test.ts's bound for final.* (1e-5).
  assert.ok(relErr(features, g.f32(g.manifest.dumps.tensors['final.norm_cls'].file)) <= 1e-5);
  const sd = readCheckpoint(g.bytes('model.pth'), 'model.pth');
  const [weight, bias] = [sd.get('head.weight')!.data, sd.get('head.bias')!.data];
  const head = Array.from(bias, (b, j) => features.reduce((sum, f, k) => sum + f * weight[j * features.length + k], b));
  // The head in float64 over our features against our float32 head: D = 32 products, well inside 1e-6.
  assert.ok(relErr(await fixture.logits(g.f32(input.file)), head) <= 1e-6);
  assert.ok(relErr(head, input.logits_f64) <= 1e-5);
  fixture.dispose();
});

test('unknown option names are refused, nested ones too, on both hosts; classify\'s before any reading', async () => {
  await rejects(clf.classify('no/such.png', { top_k: 3 } as never), 'BAD_ARGUMENT', /unknown option "top_k" \(did you mean topK\?\); known: topK, maxPixels, logits/);
  await rejects(clf.embed(PNG, { topk: 3 } as never), 'BAD_ARGUMENT', /unknown option "topk"/);
  await rejects(clf.classify(PNG, { logits: 1 } as never), 'BAD_ARGUMENT', /logits must be true or false/);
  const bytes = readFileSync(model.file);
  for (const load of [(o: object) => loadClassifier(bytes, o), (o: object) => loadWeb(bytes, o)]) {
    await rejects(load({ thread: 2 }), 'BAD_ARGUMENT', /loadClassifier options: unknown option "thread"/);
    await rejects(load({ fetch: { maxbytes: 1 } }), 'BAD_ARGUMENT', /fetch limits: unknown option "maxbytes" \(did you mean maxBytes\?\)/);
    await rejects(load({ convert: { label: [] } }), 'BAD_ARGUMENT', /convert options: unknown option "label"/);
    await rejects(load({ convert: { preprocess: { size: 1 } } }), 'BAD_ARGUMENT', /convert preprocess: unknown option "size"/);
    await rejects(load({ convert: { variant: { cls: 'middle' } } }), 'BAD_ARGUMENT', /convert variant: unknown option "cls"/);
    await rejects(load({ on_progress: () => {} }), 'BAD_ARGUMENT', /did you mean onProgress/);
  }
  await rejects(loadClassifier(bytes, { decoders: {} } as never), 'BAD_ARGUMENT', /unknown option "decoders"/);   // web only
  await rejects(loadWeb(bytes, { decoders: { png: new Uint8Array(1) } } as never), 'BAD_ARGUMENT', /decoders: unknown option "png"/);
  await rejects(loadClassifier(bytes, { signal: 'stop' } as never), 'BAD_ARGUMENT', /signal must be an AbortSignal/);
});

test('onProgress: bytes loaded, the total where known (file, bytes, Blob, Content-Length), none for a chunked download', async () => {
  const size = readFileSync(model.file).length;
  const sources: [string, unknown, number | undefined][] = [
    ['path', model.file, size], ['bytes', readFileSync(model.file), size], ['Blob', new Blob([readFileSync(model.file)]), size],
    ['http with Content-Length', `${base}/model`, size], ['http chunked', `${base}/model-chunked`, undefined],
  ];
  for (const load of [loadClassifier, loadWeb]) {
    for (const [what, source, total] of sources) {
      if (load === loadWeb && what === 'path') continue;   // no files on the web build outside Deno
      const seen: LoadProgress[] = [];
      const c = await load(source as never, { onProgress: (p) => seen.push({ ...p }) });
      c.dispose();
      assert.ok(seen.length >= 1, what);
      seen.forEach((p, i) => {
        assert.is(p.total, total, what);
        if (i > 0) assert.ok(p.loaded > seen[i - 1].loaded, `${what}: progress goes forward`);
      });
      assert.is(seen.at(-1)!.loaded, size, what);
    }
  }
});

test('signal: aborts before, during a download (the rest never comes) and after reading, as ABORTED', async () => {
  for (const load of [loadClassifier, loadWeb]) {
    await rejects(load(readFileSync(model.file), { signal: AbortSignal.abort() }), 'ABORTED', /loading aborted/);
    const during = new AbortController();
    const t0 = Date.now();
    await rejects(load(`${base}/slow`, { signal: during.signal, onProgress: () => during.abort(new Error('user cancelled')) }),
      'ABORTED', /\/slow: loading aborted \(user cancelled\)/);
    assert.ok(Date.now() - t0 < 10_000, 'the abort did not wait for the timeout');
  }
  // A file read in one chunk: the abort from its only progress report is seen before the model is built.
  const after = new AbortController();
  await rejects(loadClassifier(model.file, { signal: after.signal, onProgress: () => after.abort() }), 'ABORTED', /aborted/);
});

test('Symbol.dispose: `using` releases the model at the end of the block', async () => {
  let kept: NodeClassifier;
  {
    using scoped = await loadClassifier(model.file);
    kept = scoped;
    assert.ok(scoped.info.memoryBytes > 0);
  }
  assert.is(kept.info.memoryBytes, 0);
  await rejects(kept.classify(PNG), 'BAD_ARGUMENT', /disposed/);
});

test.run();

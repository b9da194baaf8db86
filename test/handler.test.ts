// createClassifyHandler (src/hosts/handler.ts) under Node with Request objects, from the Node entry and the
// web build: answers, every refusal's status and JSON { code, message }, limits applied before decoding, the
// model loaded once (and again after a failed load), options checked when the handler is made. workerd runs
// it as examples/edge-worker in test/hosts.test.ts and from the installed package in test/package.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync } from 'node:fs';
import { createClassifyHandler, loadClassifier, type NodeClassifier } from '../src/index.js';
import { createClassifyHandler as createWebHandler } from '../src/hosts/browser.js';
import { FIVE_IMAGES, IMAGES_DIR, prepareModel } from './helpers/hosts.js';
import { headerOnlyPng } from './helpers/png.js';
import { rejects } from './helpers/rejects.js';

const PNG = new Uint8Array(readFileSync(FIVE_IMAGES[3]));
const JPEG = new Uint8Array(readFileSync(FIVE_IMAGES[0]));
let model: { dir: string; file: string };
let clf: NodeClassifier;

test.before(async () => {
  model = await prepareModel();
  clf = await loadClassifier(model.file);
});
test.after(() => rmSync(model.dir, { recursive: true, force: true }));

const post = (body: BodyInit | null, headers: Record<string, string> = {}) =>
  new Request('http://localhost/classify', { method: 'POST', body, headers, duplex: 'half' } as RequestInit);

async function expectRefusal(response: Response, status: number, code: string, message: RegExp): Promise<void> {
  const body = await response.json() as { code: string; message: string };
  assert.is(response.status, status, JSON.stringify(body));
  assert.is(response.headers.get('content-type'), 'application/json');
  assert.is(body.code, code);
  assert.match(body.message, message);
}

for (const [host, create] of [['Node', createClassifyHandler], ['web build', createWebHandler]] as const) {
  test(`${host}: a POSTed image answers { predictions } equal to classify's; every refusal is JSON with its status`, async () => {
    const handle = create({ model: readFileSync(model.file), maxBodyBytes: 200_000, maxPixels: 1_000_000, topK: 3 });
    for (const image of [PNG, JPEG]) {
      const response = await handle(post(image, { 'content-type': 'image/png' }));   // the content type is not trusted
      assert.is(response.status, 200);
      const { predictions } = await response.json() as { predictions: { label: string; score: number }[] };
      const want = await clf.classify(image, { topK: 3 });
      assert.equal(predictions.map((p) => p.label), want.map((p) => p.label));
      predictions.forEach((p, i) => assert.ok(Math.abs(p.score - want[i].score) < 1e-6));
    }
    const get = await handle(new Request('http://localhost/'));
    assert.is(get.headers.get('allow'), 'POST');
    await expectRefusal(get, 405, 'METHOD_NOT_ALLOWED', /GET not allowed/);
    await expectRefusal(await handle(post(null)), 400, 'BAD_IMAGE', /empty body/);
    await expectRefusal(await handle(post('hello')), 415, 'BAD_IMAGE', /image/);
    await expectRefusal(await handle(post(PNG.subarray(0, 100))), 422, 'BAD_IMAGE', /./);
    // Limits before decoding: a declared length, a streamed body passing the limit, a header's pixel count.
    await expectRefusal(await handle(post(new Uint8Array(10), { 'content-length': '200001' })), 413, 'BODY_TOO_LARGE', /body over 200000 bytes/);
    const endless = new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(64 * 1024)); } });
    await expectRefusal(await handle(post(endless)), 413, 'BODY_TOO_LARGE', /body over/);
    await expectRefusal(await handle(post(new Uint8Array(headerOnlyPng(2000, 1000)))), 422, 'BAD_IMAGE', /over the limit of 1000000/);
  });
}

test('TIFF: 200 on Node (sharp reads it), 415 on the web build (no decoder there)', async () => {
  const tiff = new Uint8Array(readFileSync(`${IMAGES_DIR}/rocket_130x87.tif`));
  assert.is((await createClassifyHandler({ model: model.file })(post(tiff))).status, 200);
  await expectRefusal(await createWebHandler({ model: readFileSync(model.file) })(post(tiff)), 415, 'BAD_IMAGE', /not a JPEG, PNG, GIF, WebP or BMP/);
});

test('the model: loaded on the first request, once; a classifier given is used as it is; a failed load is a 500 and retried', async () => {
  // A Response's body can be read once: a second load would fail.
  const handle = createClassifyHandler({ model: new Response(readFileSync(model.file)) });
  const answers = await Promise.all([handle(post(PNG)), handle(post(JPEG)), handle(post(PNG))]);
  assert.equal(answers.map((a) => a.status), [200, 200, 200]);
  assert.is((await handle(post(JPEG))).status, 200);
  assert.is((await createClassifyHandler({ model: clf })(post(PNG))).status, 200);
  assert.is((await createClassifyHandler({ model: Promise.resolve(clf) })(post(PNG))).status, 200);
  const broken = createClassifyHandler({ model: new Uint8Array(16) });
  await expectRefusal(await broken(post(PNG)), 500, 'BAD_CHECKPOINT', /the model could not be loaded/);
  await expectRefusal(await broken(post(PNG)), 500, 'BAD_CHECKPOINT', /the model could not be loaded/);
  // Without a model, Node's handler serves the package's default model.
  assert.is((await createClassifyHandler({})(post(PNG))).status, 200);
});

test('options: unknown names and bad values refused when the handler is made', () => {
  rejects(() => createClassifyHandler({ model: model.file, maxBody: 1 } as never), 'BAD_ARGUMENT', /unknown option "maxBody"/);
  rejects(() => createClassifyHandler({ model: model.file, top_k: 1 } as never), 'BAD_ARGUMENT', /did you mean topK/);
  rejects(() => createClassifyHandler({ model: model.file, topK: 0 }), 'BAD_ARGUMENT', /topK must be a positive integer/);
  rejects(() => createClassifyHandler({ model: model.file, maxPixels: -1 }), 'BAD_ARGUMENT', /maxPixels must be a positive integer/);
  rejects(() => createWebHandler({ model: new Uint8Array(1), maxBodyBytes: 0.5 }), 'BAD_ARGUMENT', /maxBodyBytes must be a positive integer/);
});

test.run();

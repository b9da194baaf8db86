// One API on every host, in one run: the same five images (JPEG and PNG) and model classified on Node
// (examples/node) and Bun (the same script), Deno (examples/deno, narrowest permissions), Chromium desktop and a
// mobile viewport with touch, Firefox and WebKitGTK (examples/browser, inference in a Web Worker, COOP/COEP, 1 and
// 2 threads) and workerd (examples/edge-worker); identical top-5 labels, scores equal to 1e-6. The engines: V8
// (Node, Deno, Chromium, workerd), JavaScriptCore (Bun, WebKitGTK) and SpiderMonkey (Firefox). Also the edge
// worker's (createClassifyHandler's) 4xx answers and statelessness.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { request } from 'node:http';
import { headerOnlyPng } from './helpers/png.js';
import {
  FIVE_IMAGES, IMAGES_DIR, ROOT, bunBinary, chromiumContext, compareTop, denoBinary, ensureBuilt, prepareModel, serveEdgeWorker,
  type EdgeWorker, type TopPrediction,
} from './helpers/hosts.js';
import { ENGINE_NAMES, LAUNCHERS, classifyOnExamplePage, serveExample } from './helpers/browsers.js';
import { loadClassifier } from '../src/index.js';

const results: Record<string, TopPrediction[][]> = {};
let model: { dir: string; file: string };
const cleanup: (() => unknown)[] = [];
const tmp = mkdtempSync(path.join(tmpdir(), 'vimedge-hosts-'));

test.before(async () => {
  ensureBuilt();
  model = await prepareModel();
});

test.after(async () => {
  for (const fn of cleanup.reverse()) await fn();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
  rmSync(model.dir, { recursive: true, force: true });
});

function parseLines(stdout: string): { image: string; top5: TopPrediction[] }[] {
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('browser bundle: no Node built-ins, JS under 50 kB gzip; sizes reported', () => {
  const js = readFileSync(path.join(ROOT, 'dist/browser/vimedge.js'), 'utf8');
  assert.not.match(js, /\bfrom\s*["']node:|\brequire\(\s*["']/, 'the browser bundle imports a Node module');
  const gz = (f: string) => gzipSync(readFileSync(path.join(ROOT, 'dist/browser', f)), { level: 9 }).length;
  const sizes = Object.fromEntries(readdirSync(path.join(ROOT, 'dist/browser')).map((f) => [f, gz(f)]));
  console.log(`  gzip: ${JSON.stringify(sizes)}, model ${gzipSync(readFileSync(model.file)).length} B`);
  assert.ok(sizes['vimedge.js'] < 50 * 1024, `vimedge.js is ${sizes['vimedge.js']} B gzip`);
});

test('Node: examples/node/classify.mjs through the package exports map', () => {
  const r = spawnSync(process.execPath, ['examples/node/classify.mjs', model.file, ...FIVE_IMAGES], { cwd: ROOT, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const lines = parseLines(r.stdout);
  assert.equal(lines.map((l) => l.image), FIVE_IMAGES);
  for (const l of lines) assert.is(l.top5.length, 5);
  results.node = lines.map((l) => l.top5);
});

test('Bun (JavaScriptCore): the same Node example, unchanged', () => {
  const r = spawnSync(bunBinary(), ['examples/node/classify.mjs', model.file, ...FIVE_IMAGES], { cwd: ROOT, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const lines = parseLines(r.stdout);
  assert.equal(lines.map((l) => l.image), FIVE_IMAGES);
  results.bun = lines.map((l) => l.top5);
});

test('Deno: examples/deno/classify.ts with --allow-read of the model folder and the images only', () => {
  const deno = denoBinary();
  const env = { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_DIR: path.join(tmp, 'deno-cache') };
  const cwd = path.join(ROOT, 'examples/deno');
  const args = (allow: string[], ...options: string[]) =>
    ['run', '--no-prompt', `--allow-read=${allow.join(',')}`, 'classify.ts', ...options, model.file, ...FIVE_IMAGES];
  const r = spawnSync(deno, args([model.dir, ...FIVE_IMAGES]), { cwd, env, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const lines = parseLines(r.stdout);
  assert.equal(lines.map((l) => l.image), FIVE_IMAGES);
  results.deno = lines.map((l) => l.top5);
  // Two threads (Web Workers on shared memory), the same permissions: identical answers.
  const two = spawnSync(deno, args([model.dir, ...FIVE_IMAGES], '--threads=2'), { cwd, env, encoding: 'utf8' });
  assert.is(two.status, 0, two.stderr);
  assert.equal(parseLines(two.stdout).map((l) => l.top5), results.deno);
  // Without read access to the model, it is refused (nothing else is readable either).
  const denied = spawnSync(deno, args(FIVE_IMAGES), { cwd, env, encoding: 'utf8' });
  assert.is.not(denied.status, 0);
  assert.match(denied.stderr, /permission|NotCapable|Requires read access/i);
});

// ---- workerd

let workerd: EdgeWorker | undefined;

async function startWorkerd(): Promise<EdgeWorker> {
  workerd = await serveEdgeWorker(model.file, path.join(tmp, 'edge'));
  const { proc } = workerd;
  cleanup.push(() => proc.kill('SIGKILL'));
  return workerd;
}

const post = (url: string, body: BodyInit, type = 'application/octet-stream', extra: RequestInit = {}) =>
  fetch(url, { method: 'POST', body, headers: { 'content-type': type }, ...extra } as RequestInit);

test('workerd: examples/edge-worker answers POSTed images with the top-5 as JSON', async () => {
  const { url } = await startWorkerd();
  results.workerd = [];
  for (const file of FIVE_IMAGES) {
    const res = await post(url, readFileSync(file), file.endsWith('.png') ? 'image/png' : 'image/jpeg');
    const body = await res.json() as { predictions: TopPrediction[] };
    assert.is(res.status, 200, JSON.stringify(body));
    assert.is(res.headers.get('content-type'), 'application/json');
    results.workerd.push(body.predictions);
  }
});

/**
 * A POST announcing `declared` bytes but sending only the first 64 kB, through node:http: workerd refuses an
 * oversized Content-Length at once and closes the connection, which fetch reports only as a broken pipe.
 */
function postDeclaring(url: string, declared: number): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'image/jpeg', 'content-length': String(declared) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => { req.destroy(); resolve(new Response(Buffer.concat(chunks), { status: res.statusCode })); });
    });
    req.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err); });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
    req.flushHeaders();
    req.write(new Uint8Array(64 * 1024));
  });
}

test('workerd: 4xx JSON errors for wrong methods, non-images, corrupt and oversized bodies', async () => {
  const { url } = workerd!;
  const expect = async (res: Response, status: number, code: string, pattern: RegExp) => {
    const body = await res.json() as { code: string; message: string };
    assert.is(res.status, status, JSON.stringify(body));
    assert.is(body.code, code);
    assert.match(body.message, pattern);
  };
  await expect(await fetch(url), 405, 'METHOD_NOT_ALLOWED', /GET not allowed/);
  assert.is((await fetch(url, { method: 'PUT', body: 'x' })).headers.get('allow'), 'POST');
  await expect(await post(url, 'hello', 'text/plain'), 415, 'BAD_IMAGE', /not a JPEG, PNG, GIF, WebP or BMP/);
  await expect(await post(url, readFileSync(path.join(IMAGES_DIR, 'rocket_130x87.tif')), 'image/tiff'), 415, 'BAD_IMAGE', /not a JPEG, PNG, GIF, WebP or BMP/);
  await expect(await post(url, new Uint8Array(0)), 400, 'BAD_IMAGE', /empty body/);
  const jpeg = readFileSync(FIVE_IMAGES[0]);
  await expect(await post(url, jpeg.subarray(0, jpeg.length >> 1), 'image/jpeg'), 422, 'BAD_IMAGE', /cannot decode JPEG/);
  // 5000 x 4000 = 20 megapixels, over the example's 16: refused from the header, before decoding.
  await expect(await post(url, new Uint8Array(headerOnlyPng(5000, 4000)), 'image/png'), 422, 'BAD_IMAGE', /over the limit of 16000000/);
  await expect(await postDeclaring(url, 9 * 1024 * 1024), 413, 'BODY_TOO_LARGE', /body over/);
  // No Content-Length (chunked): refused while streaming.
  const chunks = new ReadableStream({
    start(c) { for (let i = 0; i < 10; i++) c.enqueue(new Uint8Array(1024 * 1024)); c.close(); },
  });
  await expect(await post(url, chunks, 'image/png', { duplex: 'half' } as RequestInit), 413, 'BODY_TOO_LARGE', /body over/);
});

test('workerd: stateless, the same answers after errors and under concurrent requests', async () => {
  const { url } = workerd!;
  const bodies = FIVE_IMAGES.map((f) => readFileSync(f));
  const answers = await Promise.all([...bodies, ...bodies].map(async (b, i) => {
    if (i === 3) await post(url, b.subarray(0, 100)); // a failing request in between
    return (await (await post(url, b)).json() as { predictions: TopPrediction[] }).predictions;
  }));
  answers.forEach((a, i) => assert.equal(a, results.workerd[i % 5], `request ${i}`));
});

// ---- Chromium

let server: Awaited<ReturnType<typeof serveExample>> | undefined;

/** The origin of examples/browser/serve.mjs, serving the test model at /model.vimq. */
async function pageOrigin(): Promise<string> {
  if (!server) {
    server = await serveExample({ '/model.vimq': model.file });
    cleanup.push(() => server!.close());
  }
  return server.origin;
}

const pageUrl = async (query = '') => `${await pageOrigin()}/examples/browser/?model=/model.vimq${query}`;

async function launch(options: Record<string, unknown>) {
  const context = await chromiumContext(mkdtempSync(path.join(tmp, 'chromium-')), options);
  cleanup.push(() => context.close().catch(() => {}));
  return context;
}

type Page = Awaited<ReturnType<Awaited<ReturnType<typeof launch>>['newPage']>>;

async function classifyOnPage(page: Page, pick: (file: string) => Promise<void>): Promise<TopPrediction[][]> {
  const out: TopPrediction[][] = [];
  for (const file of FIVE_IMAGES) {
    await pick(file);
    const name = path.basename(file);
    const handle = await page.waitForFunction((n) => {
      const r = document.body.dataset.result;
      return r && JSON.parse(r).name === n ? r : undefined;
    }, name, { timeout: 20_000 });
    const result = JSON.parse(await handle.jsonValue() as string);
    assert.is(result.type, 'result', result.message);
    assert.is(await page.locator('#results li').count(), 5);
    out.push(result.top5);
  }
  return out;
}

let desktop: Awaited<ReturnType<typeof launch>> | undefined;

test('Chromium (desktop): examples/browser, picked files classified in a Web Worker, cross-origin isolated', async () => {
  const context = desktop = await launch({ viewport: { width: 820, height: 540 } });
  const page = context.pages()[0] ?? await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) errors.push(m.text()); });
  const response = await page.goto(await pageUrl());
  assert.match(response!.headers()['content-security-policy'], /script-src 'self' 'wasm-unsafe-eval'/);
  await page.waitForSelector('body[data-ready=true]', { timeout: 20_000 });
  assert.ok(await page.evaluate(() => self.crossOriginIsolated), 'COOP/COEP headers not in effect');
  results.chromium = await classifyOnPage(page, (file) => page.setInputFiles('#file', file));
  // A drop onto the drop zone goes the same way.
  const dropped = await page.evaluateHandle(async (name) => {
    const bytes = await (await fetch(`/test/fixtures/images/${name}`)).arrayBuffer();
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], `dropped-${name}`, { type: 'image/png' }));
    return dt;
  }, path.basename(FIVE_IMAGES[3]));
  await page.dispatchEvent('#drop', 'drop', { dataTransfer: dropped });
  const r = await page.waitForFunction(() => document.body.dataset.result?.includes('dropped-'), undefined, { timeout: 20_000 });
  assert.ok(await r.jsonValue());
  assert.equal(JSON.parse((await page.evaluate(() => document.body.dataset.result))!).top5, results.chromium[3]);
  if (process.env.VIMEDGE_UPDATE_SCREENSHOTS) {
    await page.setInputFiles('#file', path.join(IMAGES_DIR, 'chelsea_451x300.jpg'));
    await page.waitForFunction(() => document.body.dataset.result?.includes('chelsea'));
    await page.screenshot({ path: path.join(ROOT, 'docs/browser-example.png') });
  }
  assert.equal(errors, []);
});

test('Chromium (desktop): ?threads=2, the page\'s worker runs two threads (Web Workers), identical answers', async () => {
  const page = await desktop!.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) errors.push(m.text()); });
  await page.goto(await pageUrl('&threads=2'));
  await page.waitForSelector('body[data-ready=true]', { timeout: 20_000 });
  assert.match(await page.locator('#status').textContent() ?? '', /2 threads/);
  assert.equal(await classifyOnPage(page, (file) => page.setInputFiles('#file', file)), results.chromium);
  assert.equal(errors, []);
  await page.close();
});

test('Chromium: the API in the page itself, ImageData / ImageBitmap / WebP through the canvas', async () => {
  const page = await desktop!.newPage();
  await page.goto(await pageUrl());
  const names = [path.basename(FIVE_IMAGES[3]), 'motorcycle_187x126.webp'];
  // A string, not a function: tsx's transform would add helpers (__name) that do not exist in the page.
  const out = await page.evaluate(`(async () => {
    const { loadClassifier } = await import('/dist/browser/vimedge.js');
    const clf = await loadClassifier('/model.vimq');
    const fetchBlob = async (n) => (await fetch('/test/fixtures/images/' + n)).blob();
    const png = await fetchBlob(${JSON.stringify(names[0])});
    const bitmap = await createImageBitmap(png, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    const ctx = new OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    const r = {
      blob: await clf.classify(png),
      imageData: await clf.classify(ctx.getImageData(0, 0, bitmap.width, bitmap.height)),
      bitmap: await clf.classify(bitmap),
      webp: await clf.classify(await fetchBlob(${JSON.stringify(names[1])})),
      info: clf.info.labels.length,
    };
    clf.dispose();
    return r;
  })()`) as Record<'blob' | 'imageData' | 'bitmap' | 'webp', TopPrediction[]> & { info: number };
  assert.is(out.info, 10);
  assert.equal(out.blob, results.node[3]);
  // Chromium's PNG decoder + canvas give the same pixels for an opaque sRGB PNG without colour chunks.
  assert.equal(out.imageData, results.node[3]);
  assert.equal(out.bitmap, results.node[3]);
  // WebP is not one of the shared decoder's formats: the canvas decodes it (libwebp in both Chromium and sharp).
  const r = spawnSync(process.execPath, ['examples/node/classify.mjs', model.file, path.join(IMAGES_DIR, names[1])], { cwd: ROOT, encoding: 'utf8' });
  const webpNode = parseLines(r.stdout)[0].top5;
  console.log(`  WebP via the canvas vs sharp: max score difference ${compareTop(webpNode, out.webp, 'webp').toExponential(2)}`);
  await desktop!.close(); // one browser at a time on a small machine
});

test('Chromium (mobile viewport, touch): tap to pick, same answers, no horizontal scrolling', async () => {
  const context = await launch({ viewport: { width: 390, height: 760 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = context.pages()[0] ?? await context.newPage();
  await page.goto(await pageUrl());
  await page.waitForSelector('body[data-ready=true]', { timeout: 20_000 });
  const env = await page.evaluate(() => ({
    touch: navigator.maxTouchPoints, coarse: matchMedia('(pointer: coarse)').matches,
    overflow: document.documentElement.scrollWidth - innerWidth, width: innerWidth,
    pick: document.getElementById('pick')!.getBoundingClientRect().height,
  }));
  assert.ok(env.touch > 0 && env.coarse, `touch emulation: ${JSON.stringify(env)}`);
  assert.is(env.width, 390);
  assert.ok(env.overflow <= 0, `the page scrolls sideways by ${env.overflow}px`);
  assert.ok(env.pick >= 44, `the pick button is ${env.pick}px tall (touch targets: >= 44)`);
  results.mobile = await classifyOnPage(page, async (file) => {
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.tap('#pick')]);
    await chooser.setFiles(file);
  });
  await page.screenshot({ path: path.join(tmp, 'mobile.png') });
  if (process.env.VIMEDGE_SCREENSHOT_DIR) copyFileSync(path.join(tmp, 'mobile.png'), path.join(process.env.VIMEDGE_SCREENSHOT_DIR, 'mobile.png'));
});

// ---- Firefox (SpiderMonkey) and WebKitGTK (JavaScriptCore)

/**
 * Logits of the PNGs among the five images through the API on Node, with the portable kernels that the browser
 * bundle carries (Node 22+ would pick the relaxed-SIMD build): the same wasm and JavaScript as in the browsers,
 * so that only the engine differs.
 */
const PNG_IMAGES = FIVE_IMAGES.filter((f) => f.endsWith('.png'));
let nodeLogits: Promise<number[][]> | undefined;
function portableNodeLogits(): Promise<number[][]> {
  return nodeLogits ??= (async () => {
    const clf = await loadClassifier(readFileSync(model.file), { wasm: readFileSync(path.join(ROOT, 'build/vimedge.wasm')) });
    const out = [];
    for (const file of PNG_IMAGES) out.push(Array.from(await clf.logits(readFileSync(file))));
    clf.dispose();
    return out;
  })();
}

for (const engine of ['firefox', 'webkitgtk'] as const) {
  test(`${ENGINE_NAMES[engine]}: examples/browser at 1 and 2 threads, cross-origin isolated; the API's logits equal Node's`, async () => {
    const browser = await LAUNCHERS[engine]();
    try {
      console.log(`  ${browser.version}`);
      const images = FIVE_IMAGES.map((f) => ({ name: path.basename(f), path: `/test/fixtures/images/${path.basename(f)}`,
        type: f.endsWith('.png') ? 'image/png' : 'image/jpeg' }));
      for (const threads of [1, 2]) {
        const run = await classifyOnExamplePage(browser, { origin: await pageOrigin(), model: '/model.vimq', threads }, images);
        assert.ok(run.crossOriginIsolated, 'COOP/COEP headers not in effect');
        assert.match(run.status, `, ${threads} thread${threads > 1 ? 's' : ''} (`);
        assert.equal(run.answers.map((a) => a.name), images.map((i) => i.name));
        results[`${engine}-${threads}`] = run.answers.map((a) => a.top5);
      }
      // The kernels are the same portable wasm and the preprocessing uses only exactly rounded arithmetic
      // (+ - * /, sqrt, floor, round): equal bits are expected, tolerance 0; only classify's softmax (Math.exp,
      // not exactly specified) may differ in the last bits, which the 1e-6 of the score comparison allows.
      const logits = await browser.evaluate<number[][]>(`(async () => {
        const { loadClassifier } = await import('/dist/browser/vimedge.js');
        const clf = await loadClassifier('/model.vimq');
        const out = [];
        for (const name of ${JSON.stringify(PNG_IMAGES.map((f) => path.basename(f)))}) {
          const bytes = new Uint8Array(await (await fetch('/test/fixtures/images/' + name)).arrayBuffer());
          out.push(Array.from(await clf.logits(bytes)));
        }
        clf.dispose();
        return out;
      })()`);
      const want = await portableNodeLogits();
      assert.is(logits.length, PNG_IMAGES.length);
      logits.forEach((l, i) => {
        assert.is(l.indexOf(Math.max(...l)), want[i].indexOf(Math.max(...want[i])), `top-1 of ${path.basename(PNG_IMAGES[i])}`);
        assert.equal(l, want[i], `logits of ${path.basename(PNG_IMAGES[i])}`);
      });
    } finally {
      await browser.close();
    }
  });
}

test('docs/API.md shows the examples these tests run, verbatim', () => {
  const doc = readFileSync(path.join(ROOT, 'docs/API.md'), 'utf8');
  const shown = [...doc.matchAll(/<!-- file: (\S+) -->\n```\w*\n([\s\S]*?)\n```/g)];
  assert.equal(shown.map((m) => m[1]).sort(), ['examples/browser/worker.js', 'examples/deno/classify.ts',
    'examples/edge-worker/config.capnp', 'examples/edge-worker/worker.js', 'examples/node/classify.mjs']);
  for (const [, file, code] of shown) {
    assert.is(code, readFileSync(path.join(ROOT, file), 'utf8').trimEnd(), `docs/API.md is out of date for ${file}`);
  }
});

test('identical top-5 labels and scores within 1e-6 on Node, Bun, Deno, Chromium (desktop, mobile), Firefox, WebKitGTK and workerd', () => {
  const hosts = ['bun', 'deno', 'chromium', 'mobile', 'firefox-1', 'firefox-2', 'webkitgtk-1', 'webkitgtk-2', 'workerd'];
  let max = 0;
  for (const host of hosts) {
    assert.ok(results[host], `${host} has no results (its test failed)`);
    FIVE_IMAGES.forEach((file, i) => {
      max = Math.max(max, compareTop(results.node[i], results[host][i], `${host} vs node, ${path.basename(file)}`));
    });
  }
  console.log(`  max |score difference| across hosts: ${max.toExponential(2)}`);
  assert.ok(max <= 1e-6, `max score difference ${max}`);
});

test.run();

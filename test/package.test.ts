// The package as its users get it: `npm pack`, the tarball installed into one temporary consumer project
// (dependencies from the npm cache, else the registry), then used the ways users do: Node ESM and CommonJS,
// Node without sharp, the README's quick start verbatim, a strict TypeScript project resolving for a bundler,
// esbuild bundles for Node and for the browser (run in Chromium, also under a CSP that refuses WebAssembly),
// a Vite build run in Chromium, Deno (`deno check` + `deno run` of examples/deno), workerd serving
// createClassifyHandler from the worker build straight from node_modules, and `convert` of a 1000-class
// checkpoint. The test
// command builds dist/ first; run alone, this suite needs `npm run build`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { CHROMIUM, ROOT, denoBinary, freePort, waitFor, workerdBinary } from './helpers/hosts.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'vimedge-package-'));
const app = path.join(tmp, 'app');
const BAG = path.join(ROOT, 'examples/images/test-0018-bag.png');
const PHOTO = path.join(ROOT, 'test/fixtures/images/chelsea_451x300.jpg');
const TIFF = path.join(ROOT, 'test/fixtures/images/rocket_130x87.tif');
let packed: { size: number; files: { path: string }[] };

function run(cmd: string, args: string[], options: SpawnSyncOptions = {}) {
  const r = spawnSync(cmd, args, { cwd: app, encoding: 'utf8', timeout: 120_000, ...options });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

function ok(cmd: string, args: string[], options: SpawnSyncOptions = {}): string {
  const r = run(cmd, args, options);
  assert.is(r.status, 0, `${cmd} ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A script in the consumer project that prints the top-3 of the bag image as JSON. */
const BAG_SCRIPT = {
  esm: `import { loadClassifier } from 'vimedge';
const classifier = await loadClassifier();
console.log(JSON.stringify(await classifier.classify(${JSON.stringify(BAG)}, { topK: 3 })));
classifier.dispose();
`,
  cjs: `const { loadClassifier } = require('vimedge');
loadClassifier().then(async (classifier) => {
  console.log(JSON.stringify(await classifier.classify(${JSON.stringify(BAG)}, { topK: 3 })));
  classifier.dispose();
});
`,
};
let reference: { label: string; score: number }[];

test.before(() => {
  assert.ok(existsSync(path.join(ROOT, 'dist/src/index.js')), 'dist/ is missing: npm run build');
  // --ignore-scripts: the test command has just built dist/; `prepack` would build it again (a minute).
  const out = ok('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT });
  [packed] = JSON.parse(out) as (typeof packed)[];
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  ok('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp, 'vimedge-0.1.0.tgz')]);
  writeFileSync(path.join(app, 'bag.mjs'), BAG_SCRIPT.esm);
  writeFileSync(path.join(app, 'bag.cjs'), BAG_SCRIPT.cjs);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('the tarball: the default model only, LICENSE and docs/API.md, at most 12 MB', () => {
  const files = packed.files.map((f) => f.path);
  assert.equal(files.filter((f) => f.startsWith('models/')).sort(),
    ['models/fashion-mnist-labels.txt', 'models/imagenet-labels.txt', 'models/vim-fmnist.w8a8.vimq']);
  assert.ok(files.includes('LICENSE') && files.includes('docs/API.md'));
  assert.not.ok(files.some((f) => /w4a8|\.pth$|vim-fmnist\.vimq$|^src\/|^test\//.test(f)), files.join(' '));
  assert.ok(packed.size <= 12e6, `tarball ${packed.size} bytes`);
  console.log(`  tarball ${(packed.size / 1e6).toFixed(1)} MB, ${files.length} files`);
});

test('build logs go to stderr (npm pack --json prints only JSON); npm prints no config warning', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.match(pkg.scripts.prepack, /1>&2$/);
  assert.is(run(process.execPath, ['scripts/build-web.mjs'], { cwd: ROOT }).stdout, '');
  assert.not.match(run('npm', ['pkg', 'get', 'name'], { cwd: ROOT }).stderr, /Unknown project config/);
});

test('installed with its dependencies: at most 35 MB, sharp there, vega not (the charts say to install it)', () => {
  const kb = Number(ok('du', ['-sk', 'node_modules']).split('\t')[0]);
  console.log(`  node_modules ${(kb / 1024).toFixed(1)} MB`);
  assert.ok(kb * 1024 <= 35 * 1024 * 1024, `${kb} kB`);
  assert.ok(existsSync(path.join(app, 'node_modules/sharp')));
  assert.not.ok(existsSync(path.join(app, 'node_modules/vega')));
  // The charts (`eval --plot`, `outliers`) are the only users of vega: without it, a one-line error.
  const chart = run(process.execPath, ['--input-type=module', '-e',
    "const { vegaPng } = await import('vimedge/dist/src/report/png.js'); await vegaPng({}).catch((e) => console.log(e.code, e.message));"]);
  assert.is(chart.stdout.trim(), 'BAD_ARGUMENT drawing a chart needs the optional package vega: npm install vega', chart.stderr);
});

test('Node: ESM and CommonJS, the default model, the same answer', () => {
  reference = JSON.parse(ok(process.execPath, ['bag.mjs']));
  assert.is(reference[0].label, 'Bag');
  assert.equal(JSON.parse(ok(process.execPath, ['bag.cjs'])), reference);
});

test('the README quick start: `npx vimedge classify photo.jpg` and the JS snippet, verbatim', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const quick = readme.slice(readme.indexOf('## Quick start'));
  assert.ok(quick.includes('npm i vimedge\nnpx vimedge classify photo.jpg\n'));
  const snippet = /```js\n([\s\S]*?)```/.exec(quick)![1];
  copyFileSync(PHOTO, path.join(app, 'photo.jpg'));
  writeFileSync(path.join(app, 'classify.mjs'), snippet);
  const printed = ok(process.execPath, ['classify.mjs']);
  assert.is((printed.match(/label:/g) ?? []).length, 3, printed);
  assert.match(ok('npx', ['--no-install', 'vimedge', 'classify', 'photo.jpg']), /^photo\.jpg: \S/);
});

test('Node without sharp: JPEG decoded by jSquash to the same scores, formats only sharp reads (TIFF) refused naming sharp', () => {
  const sharp = path.join(app, 'node_modules/sharp');
  renameSync(sharp, `${sharp}.away`);
  try {
    assert.equal(JSON.parse(ok(process.execPath, ['bag.mjs'])), reference);
    writeFileSync(path.join(app, 'formats.mjs'), `import { loadClassifier } from 'vimedge';
const classifier = await loadClassifier();
const photo = await classifier.logits('photo.jpg');
const tiff = await classifier.classify(${JSON.stringify(TIFF)}).catch((e) => e);
console.log(JSON.stringify({ photo: Array.from(photo), tiff: [tiff.code, tiff.message] }));
`);
    const without = JSON.parse(ok(process.execPath, ['formats.mjs']));
    assert.equal(without.tiff[0], 'BAD_IMAGE');
    assert.match(without.tiff[1], /npm install sharp/);
    renameSync(`${sharp}.away`, sharp);
    const withSharp = JSON.parse(ok(process.execPath, ['formats.mjs']));
    assert.equal(without.photo, withSharp.photo, 'JPEG logits differ between sharp and jSquash');
  } finally {
    if (existsSync(`${sharp}.away`)) renameSync(`${sharp}.away`, sharp);
  }
});

test('TypeScript, strict: bundler resolution + lib dom gets the web types (loadClassifier() does not compile), nodenext Node\'s', () => {
  const tsc = path.join(ROOT, 'node_modules/.bin/tsc');
  const tsconfig = (file: string) => JSON.stringify({
    compilerOptions: { strict: true, module: 'ESNext', moduleResolution: 'bundler', target: 'ES2022', lib: ['ES2022', 'DOM'], noEmit: true, types: [] },
    files: [file],
  });
  writeFileSync(path.join(app, 'web.ts'), `import { loadClassifier, VimedgeError, type Prediction } from 'vimedge';
export async function classifyUpload(model: Blob, photo: Blob, pixels: ImageData): Promise<Prediction[]> {
  const classifier = await loadClassifier(model);
  try {
    await classifier.classify(pixels);
    return await classifier.classify(photo, { topK: 3 });
  } catch (e) {
    if (e instanceof VimedgeError) console.error(e.code);
    throw e;
  } finally {
    classifier.dispose();
  }
}
`);
  writeFileSync(path.join(app, 'tsconfig.json'), tsconfig('web.ts'));
  ok(tsc, ['-p', 'tsconfig.json']);
  writeFileSync(path.join(app, 'no-source.ts'), "import { loadClassifier } from 'vimedge';\nexport const classifier = loadClassifier();\n");
  writeFileSync(path.join(app, 'tsconfig.json'), tsconfig('no-source.ts'));
  const refused = run(tsc, ['-p', 'tsconfig.json', '--pretty', 'false']);
  assert.match(refused.stdout + refused.stderr, /no-source\.ts\(2,.*TS2554/, refused.stdout + refused.stderr);
  // Where Node resolves (nodenext), Node's types: paths, and the default model without an argument.
  writeFileSync(path.join(app, 'node.mts'), "import { loadClassifier } from 'vimedge';\nconst c = await loadClassifier();\nawait c.classify('photo.jpg', { topK: 1 });\n");
  writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'ES2022', noEmit: true,
      types: ['node'], typeRoots: [path.join(ROOT, 'node_modules/@types')] },
    files: ['node.mts'],
  }));
  ok(tsc, ['-p', 'tsconfig.json', '--pretty', 'false']);
});

test('esbuild Node bundles (ESM, CommonJS) run from another folder, nothing copied', async () => {
  for (const [format, entry] of [['esm', 'bag.mjs'], ['cjs', 'bag.cjs']] as const) {
    const outfile = path.join(app, 'out', `bag.${format === 'esm' ? 'mjs' : 'cjs'}`);
    await build({ entryPoints: [path.join(app, entry)], bundle: true, platform: 'node', format, outfile, logLevel: 'error' });
    assert.equal(JSON.parse(ok(process.execPath, [outfile], { cwd: tmp })), reference, format);
  }
});

/** Serves `dir` with a CSP that allows WebAssembly under /ok/ and refuses it under /strict/. */
function serveWithCsp(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const [, policy, ...rest] = new URL(req.url ?? '/', 'http://x').pathname.split('/');
    const file = path.join(dir, rest.join('/') || 'index.html');
    const wasm = policy === 'ok' ? " 'wasm-unsafe-eval'" : '';
    if (!file.startsWith(dir) || !existsSync(file)) return void res.writeHead(404).end();
    const type = file.endsWith('.html') ? 'text/html' : file.endsWith('.js') ? 'text/javascript' : 'application/octet-stream';
    const body = readFileSync(file);
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, 'Content-Security-Policy': `script-src 'self'${wasm}` }).end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const maybeChromium = existsSync(CHROMIUM) ? test : test.skip;

/** Serves `dir` with serveWithCsp and reads the `data-result` JSON its page sets under each policy (any: the caller checks it). */
async function pageResults(dir: string, policies: string[]): Promise<any[]> {
  const server = await serveWithCsp(dir);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const { port } = server.address() as { port: number };
    const page = await browser.newPage();
    const results = [];
    for (const policy of policies) {
      await page.goto(`http://127.0.0.1:${port}/${policy}/`);
      results.push(JSON.parse(await (await page.waitForFunction(() => document.body?.dataset.result, undefined, { timeout: 30_000 })).jsonValue() as string));
    }
    return results;
  } finally {
    await browser.close();
    server.close();
  }
}

maybeChromium('esbuild browser bundle in Chromium: a Blob classified; under a CSP without wasm-unsafe-eval, WASM_BLOCKED', async () => {
  const web = path.join(app, 'web');
  mkdirSync(web, { recursive: true });
  writeFileSync(path.join(app, 'page.js'), `import { loadClassifier } from 'vimedge';
import modelUrl from 'vimedge/models/vim-fmnist.w8a8.vimq';
try {
  const photo = await (await fetch('bag.png')).blob();
  const classifier = await loadClassifier(new URL(modelUrl, location.href));
  document.body.dataset.result = JSON.stringify(await classifier.classify(photo, { topK: 3 }));
} catch (e) {
  document.body.dataset.result = JSON.stringify({ code: e.code, message: e.message });
}
`);
  await build({ entryPoints: [path.join(app, 'page.js')], bundle: true, platform: 'browser', format: 'esm', outdir: web, loader: { '.vimq': 'file' }, logLevel: 'error' });
  copyFileSync(BAG, path.join(web, 'bag.png'));
  writeFileSync(path.join(web, 'index.html'), '<!doctype html><script type="module" src="page.js"></script>');
  const [top3, blocked] = await pageResults(web, ['ok', 'strict']);
  assertReferenceTop3(top3);
  assert.is(blocked.code, 'WASM_BLOCKED', blocked.message);
  assert.match(blocked.message, /wasm-unsafe-eval/);
});

function assertReferenceTop3(top3: { label: string; score: number }[]): void {
  assert.equal(top3.map((p) => p.label), reference.map((p) => p.label), JSON.stringify(top3));
  top3.forEach((p, i) => assert.ok(Math.abs(p.score - reference[i].score) < 1e-9));
}

maybeChromium('Vite build in Chromium: the model as a ?url asset with its download reported, a Blob and an ImageBitmap classified', async () => {
  const root = path.join(app, 'vite');
  mkdirSync(root);
  writeFileSync(path.join(root, 'main.js'), `import { loadClassifier } from 'vimedge';
import modelUrl from 'vimedge/models/vim-fmnist.w8a8.vimq?url';
try {
  const progress = [];
  const classifier = await loadClassifier(new URL(modelUrl, location.href), { onProgress: (p) => progress.push(p) });
  const photo = await (await fetch('bag.png')).blob();
  const blob = await classifier.classify(photo, { topK: 3 });
  const bitmap = await classifier.classify(await createImageBitmap(photo), { topK: 1 });
  document.body.dataset.result = JSON.stringify({ blob, bitmap, last: progress.at(-1), reports: progress.length });
} catch (e) {
  document.body.dataset.result = JSON.stringify({ code: e.code, message: e.message });
}
`);
  writeFileSync(path.join(root, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
  mkdirSync(path.join(root, 'public'));
  copyFileSync(BAG, path.join(root, 'public/bag.png'));
  const { build: viteBuild } = await import('vite');
  const outDir = path.join(root, 'dist');
  await viteBuild({ root, base: './', configFile: false, logLevel: 'error', build: { outDir } });
  const [result] = await pageResults(outDir, ['ok']);
  assert.ok(result.blob, JSON.stringify(result));
  assertReferenceTop3(result.blob);
  assert.is(result.bitmap[0].label, reference[0].label);   // through a canvas: the same class, not Pillow's exact pixels
  const size = statSync(path.join(app, 'node_modules/vimedge/models/vim-fmnist.w8a8.vimq')).size;
  assert.equal(result.last, { loaded: size, total: size });
  console.log(`  Vite: model downloaded in ${result.reports} progress reports`);
});

test('Deno: deno check and deno run of examples/deno against npm:vimedge', () => {
  const dir = path.join(app, 'deno');
  mkdirSync(dir);
  copyFileSync(path.join(ROOT, 'examples/deno/classify.ts'), path.join(dir, 'classify.ts'));
  writeFileSync(path.join(dir, 'deno.json'), JSON.stringify({ imports: { vimedge: 'npm:vimedge' }, nodeModulesDir: 'manual', lock: false }));
  const deno = denoBinary();
  const env = { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' };
  ok(deno, ['check', 'classify.ts'], { cwd: dir, env });
  const model = path.join(app, 'node_modules/vimedge/models/vim-fmnist.w8a8.vimq');
  const line = ok(deno, ['run', `--allow-read=${path.dirname(model)},${BAG}`, 'classify.ts', model, BAG], { cwd: dir, env });
  const { top5 } = JSON.parse(line);
  top5.slice(0, 3).forEach((p: { label: string; score: number }, i: number) => {
    assert.is(p.label, reference[i].label);
    assert.ok(Math.abs(p.score - reference[i].score) < 1e-9);
  });
});

(existsSync(workerdBinary()) ? test : test.skip)('workerd: createClassifyHandler, the worker build and the model as modules straight from node_modules (docs/API.md)', async () => {
  const dir = path.join(app, 'edge');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'worker.js'), `import { createClassifyHandler } from 'vimedge.js';
import model from 'model.vimq';
export default { fetch: createClassifyHandler({ model, topK: 3 }) };
`);
  const dist = '../node_modules/vimedge/dist/worker';
  writeFileSync(path.join(dir, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "vimedge.js", esModule = embed "${dist}/vimedge.js"),
    (name = "vimedge.wasm", wasm = embed "${dist}/vimedge.wasm"),
    (name = "mozjpeg_dec.wasm", wasm = embed "${dist}/mozjpeg_dec.wasm"),
    (name = "webp_dec.wasm", wasm = embed "${dist}/webp_dec.wasm"),
    (name = "model.vimq", data = embed "../node_modules/vimedge/models/vim-fmnist.w8a8.vimq"),
  ],
  compatibilityDate = "2025-01-01",
);
`);
  const port = await freePort();
  const proc = spawn(workerdBinary(), ['serve', 'config.capnp', '--socket-addr', `http=127.0.0.1:${port}`], { cwd: dir, stdio: 'ignore' });
  try {
    const url = `http://127.0.0.1:${port}/`;
    const response = await waitFor(() => fetch(url, { method: 'POST', body: readFileSync(BAG) }), 30_000, 'workerd');
    assertReferenceTop3((await response.json() as { predictions: { label: string; score: number }[] }).predictions);
    const refused = await fetch(url, { method: 'POST', body: 'hello' });
    assert.equal([refused.status, (await refused.json() as { code: string }).code], [415, 'BAD_IMAGE']);
    assert.is((await fetch(url)).status, 405);
  } finally {
    proc.kill('SIGKILL');
  }
});

const TINY = path.join(ROOT, 'test/fixtures/generated/tiny/model.pth');
(existsSync(TINY) ? test : test.skip)('convert: a 1000-class checkpoint without --labels gets ImageNet\'s class names', () => {
  const out = path.join(tmp, 'tiny.vimq');
  ok('npx', ['--no-install', 'vimedge', 'convert', TINY, '-o', out]);
  const info = JSON.parse(ok('npx', ['--no-install', 'vimedge', 'inspect', out, '--json']));
  const labels = readFileSync(path.join(ROOT, 'models/imagenet-labels.txt'), 'utf8').trimEnd().split('\n');
  assert.is(info.classes, 1000);
  assert.equal(info.labels, labels.slice(0, 10));   // inspect shows the first ten
  assert.is(labels[0], 'tench');
});

test.run();

// Builds the non-Node entries with esbuild (run by `npm run build`, after build:wasm):
//   dist/browser/  vimedge.js (browsers, web workers; ESM, minified) + the three .wasm files it fetches, and
//                  for threads > 1 vimedge-thread.js (each Web Worker's program) + vimedge.mt.wasm
//   dist/worker/   vimedge.js (workerd / Workers) importing the .wasm files next to it as modules
//   dist/deno/     vimedge.js: the browser bundle with its .wasm imported as modules (`import source`), so
//                  `deno run` needs no read permission for them
// and prints the gzip sizes. Fails when the browser bundle would pull in a Node built-in.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const require = createRequire(path.join(root, 'package.json'));
const WASM = {
  'vimedge.wasm': path.join(root, 'build/vimedge.wasm'),
  'mozjpeg_dec.wasm': require.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm'),
  'squoosh_png_bg.wasm': require.resolve('@jsquash/png/codec/pkg/squoosh_png_bg.wasm'),
};
if (!existsSync(WASM['vimedge.wasm'])) throw new Error('build/vimedge.wasm is missing: run `npm run build:wasm` first');
const THREADS_WASM = path.join(root, 'build/vimedge.mt.wasm');

const common = {
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
  absWorkingDir: root,
};

function copyWasm(dir) {
  for (const [name, from] of Object.entries(WASM)) copyFileSync(from, path.join(dir, name));
}

// Browsers and web workers. `platform: 'browser'` + no Node polyfills: a `node:` import fails the build.
mkdirSync(path.join(root, 'dist/browser'), { recursive: true });
await build({ ...common, entryPoints: ['src/hosts/browser.ts'], outfile: 'dist/browser/vimedge.js', platform: 'browser' });
await build({ ...common, entryPoints: ['src/hosts/thread-worker.ts'], outfile: 'dist/browser/vimedge-thread.js', platform: 'browser' });
copyWasm(path.join(root, 'dist/browser'));
copyFileSync(THREADS_WASM, path.join(root, 'dist/browser/vimedge.mt.wasm'));

// workerd: the .wasm imports stay imports (workerd and Worker bundlers turn them into WebAssembly.Modules).
mkdirSync(path.join(root, 'dist/worker'), { recursive: true });
await build({
  ...common, entryPoints: ['src/hosts/worker.ts'], outfile: 'dist/worker/vimedge.js', platform: 'browser',
  conditions: ['workerd', 'worker', 'browser'], external: ['*.wasm'],
});
copyWasm(path.join(root, 'dist/worker'));

// Deno: a thin wrapper over the browser bundle. Deno (>= 2.2) imports `.wasm` with `import source` as a
// compiled module, needing no --allow-read (esbuild does not parse that syntax yet, hence written here).
mkdirSync(path.join(root, 'dist/deno'), { recursive: true });
writeFileSync(path.join(root, 'dist/deno/vimedge.js'), `// Deno entry: dist/browser/vimedge.js with its WebAssembly imported as modules (scripts/build-web.mjs).
import source kernels from '../browser/vimedge.wasm';
import source threadsKernels from '../browser/vimedge.mt.wasm';
import source jpeg from '../browser/mozjpeg_dec.wasm';
import source png from '../browser/squoosh_png_bg.wasm';
import { loadClassifier as load } from '../browser/vimedge.js';
export * from '../browser/vimedge.js';

export function loadClassifier(source, options = {}) {
  const wasm = options?.wasm ?? ((options?.threads ?? 1) > 1 ? threadsKernels : kernels);
  return load(source, { ...options, wasm, decoders: { jpeg, png, ...options?.decoders } });
}
`);
writeFileSync(path.join(root, 'dist/deno/vimedge.d.ts'), "export * from '../src/hosts/browser.js';\n");

// The browser bundle must not reach for Node.
const js = readFileSync(path.join(root, 'dist/browser/vimedge.js'));
const text = js.toString('utf8');
const nodeish = [/\bfrom\s*["']node:/, /\bimport\(\s*["']node:/, /\brequire\(\s*["'](node:|fs|path|url|crypto|module)["']/];
for (const re of nodeish) if (re.test(text)) throw new Error(`dist/browser/vimedge.js contains a Node built-in (${re})`);

const gz = (buf) => gzipSync(buf, { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} kB`;
const sizes = { 'vimedge.js': gz(js) };
for (const name of Object.keys(WASM)) sizes[name] = gz(readFileSync(path.join(root, 'dist/browser', name)));
const total = Object.values(sizes).reduce((a, b) => a + b, 0);
console.log(`dist/browser (gzip -9): ${Object.entries(sizes).map(([k, v]) => `${k} ${kb(v)}`).join(', ')}; total ${kb(total)}`);
if (sizes['vimedge.js'] > 50 * 1024) throw new Error(`dist/browser/vimedge.js is ${kb(sizes['vimedge.js'])} gzip, over the 50 kB budget`);

// Builds the non-Node entries with esbuild (run by `npm run build`, after build:wasm):
//   dist/browser/  vimedge.js (browsers, web workers, Deno; ESM, minified) with the kernels inline, and the
//                  chunk of the inline decoders it imports on first decode (src/hosts/inline-decoders.ts), and
//                  vimedge-thread.js, the program of each Web Worker when threads > 1 (src/hosts/thread-worker.ts)
//   dist/worker/   vimedge.js (workerd / Workers) importing the three .wasm files next to it as modules
//                  (these runtimes compile no WebAssembly from bytes)
// and prints the gzip sizes (to stderr: `npm pack --json` prints JSON on stdout). Fails when the browser
// bundle would pull in a Node built-in.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const require = createRequire(path.join(root, 'package.json'));
const WORKER_WASM = {
  'vimedge.wasm': path.join(root, 'build/vimedge.wasm'),
  'mozjpeg_dec.wasm': require.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm'),
  'webp_dec.wasm': require.resolve('@jsquash/webp/codec/dec/webp_dec.wasm'),
};

const common = {
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
  absWorkingDir: root,
};

// Browsers, web workers and Deno. `platform: 'browser'` + no Node polyfills: a `node:` import fails the build.
const browserDir = path.join(root, 'dist/browser');
rmSync(browserDir, { recursive: true, force: true });
await build({
  ...common, entryPoints: { vimedge: 'src/hosts/browser.ts' }, outdir: 'dist/browser', platform: 'browser',
  splitting: true, chunkNames: 'decoders-[hash]',
});
await build({ ...common, entryPoints: ['src/hosts/thread-worker.ts'], outfile: 'dist/browser/vimedge-thread.js', platform: 'browser' });

// workerd: the .wasm imports stay imports (workerd and Worker bundlers turn them into WebAssembly.Modules).
mkdirSync(path.join(root, 'dist/worker'), { recursive: true });
await build({
  ...common, entryPoints: ['src/hosts/worker.ts'], outfile: 'dist/worker/vimedge.js', platform: 'browser',
  conditions: ['workerd', 'worker', 'browser'], external: ['*.wasm'],
});
for (const [name, from] of Object.entries(WORKER_WASM)) copyFileSync(from, path.join(root, 'dist/worker', name));

// The browser bundle must not reach for Node.
const gz = (buf) => gzipSync(buf, { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} kB`;
const nodeish = [/\bfrom\s*["']node:/, /\bimport\(\s*["']node:/, /\brequire\(\s*["'](node:|fs|path|url|crypto|module)["']/];
const sizes = {};
for (const name of readdirSync(browserDir)) {
  const js = readFileSync(path.join(browserDir, name));
  for (const re of nodeish) if (re.test(js.toString('utf8'))) throw new Error(`dist/browser/${name} contains a Node built-in (${re})`);
  sizes[name] = gz(js);
}
const total = Object.values(sizes).reduce((a, b) => a + b, 0);
console.error(`dist/browser (gzip -9): ${Object.entries(sizes).map(([k, v]) => `${k} ${kb(v)}`).join(', ')}; total ${kb(total)}`);
if (sizes['vimedge.js'] > 50 * 1024) throw new Error(`dist/browser/vimedge.js is ${kb(sizes['vimedge.js'])} gzip, over the 50 kB budget`);

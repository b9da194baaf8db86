// Shared set-up of the cross-host tests: a converted model, the built bundles, the runtimes' binaries
// (which arrive with npm install through the `deno`, `bun` and `workerd` packages' optionalDependencies, with
// no download), free ports, the edge worker served by workerd, the image decoders of the hosts without sharp.
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { convertCheckpoint } from '../../src/convert/checkpoint.js';
import type { DecoderModules } from '../../src/hosts/web-decode.js';

export const ROOT = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '../..');
export const IMAGES_DIR = path.join(ROOT, 'test/fixtures/images');
/** The five images classified on every host: JPEG (baseline 4:2:0, progressive 4:4:4, greyscale) and PNG (RGB, RGBA). */
export const FIVE_IMAGES = [
  'astronaut_400x300.jpg',
  'retina_444_progressive_333x250.jpg',
  'camera_grey_301x297.jpg',
  'coffee_portrait_233x349.png',
  'astronaut_rgba_213x161.png',
].map((f) => path.join(IMAGES_DIR, f));

export const LABELS = ['T-shirt', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

const require = createRequire(path.join(ROOT, 'package.json'));

/** A wasm module of a package, compiled on first use. */
function compiledOnce(file: string): () => Promise<WebAssembly.Module> {
  let m: Promise<WebAssembly.Module> | undefined;
  return () => m ??= WebAssembly.compile(readFileSync(require.resolve(file)));
}

/** The JPEG decoder of the hosts without sharp (browsers, Deno, workerd): jSquash's MozJPEG. */
export const WEB_DECODERS: DecoderModules = {
  jpeg: compiledOnce('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm'),
  webp: compiledOnce('@jsquash/webp/codec/dec/webp_dec.wasm'),
};

/** The small RGB fixture model (test/fixtures/small/small/model.pth) converted to .vimq in its own folder. */
export async function prepareModel(): Promise<{ dir: string; file: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vimedge-model-'));
  const file = path.join(dir, 'model.vimq');
  const pth = path.join(ROOT, 'test/fixtures/small/small/model.pth');
  writeFileSync(file, await convertCheckpoint(new Uint8Array(readFileSync(pth)), 'model.pth', { labels: LABELS }));
  return { dir, file };
}

const newer = (a: string, b: string) => !existsSync(b) || statSync(a).mtimeMs > statSync(b).mtimeMs;

/**
 * Builds what the hosts load when it is missing or older than its sources: dist/browser and dist/worker
 * (esbuild, < 1 s) and dist/src (tsc, for the Node example's `import 'vimedge'`).
 */
export function ensureBuilt(): void {
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0 && !(cmd.endsWith('tsc') && existsSync(path.join(ROOT, 'dist/src/index.js')))) {
      throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
    }
  };
  // build:wasm writes build/*.wasm and the modules that carry them inline (src/hosts/*-wasm.generated.ts).
  if (!existsSync(path.join(ROOT, 'src/hosts/kernels-wasm.generated.ts'))) run('npm', ['run', '--silent', 'build:wasm']);
  const sources = ['src/index.ts', 'src/api.ts', 'src/hosts/web.ts', 'src/hosts/web-decode.ts', 'src/hosts/browser.ts', 'src/hosts/worker.ts'];
  if (sources.some((s) => newer(path.join(ROOT, s), path.join(ROOT, 'dist/src/index.js')))) {
    run(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json']);
  }
  run(process.execPath, ['scripts/build-web.mjs']);
}

/**
 * A runtime's binary from the package npm installed for this platform (one per `platform-arch` in
 * `packages`), else the launcher in node_modules/.bin, which finds it the slower way.
 */
function runtimeBinary(packages: Record<string, string>, relative: string, launcher: string): string {
  const pkg = packages[`${process.platform}-${process.arch}`];
  if (pkg) {
    try {
      const file = path.join(path.dirname(require.resolve(`${pkg}/package.json`)), relative);
      if (existsSync(file)) return file;
    } catch {
      // the platform package is not installed
    }
  }
  return path.join(ROOT, 'node_modules/.bin', launcher);
}

export const denoBinary = () => runtimeBinary({
  'linux-x64': '@deno/linux-x64-glibc', 'linux-arm64': '@deno/linux-arm64-glibc', 'darwin-x64': '@deno/darwin-x64',
  'darwin-arm64': '@deno/darwin-arm64',
}, 'deno', 'deno');

/** Bun (JavaScriptCore); its install script moves the binary out of the platform package into the launcher's place. */
export const bunBinary = () => runtimeBinary({
  'linux-x64': '@oven/bun-linux-x64', 'linux-arm64': '@oven/bun-linux-aarch64', 'darwin-x64': '@oven/bun-darwin-x64',
  'darwin-arm64': '@oven/bun-darwin-aarch64',
}, 'bin/bun', 'bun');

export const workerdBinary = () => runtimeBinary({
  'linux-x64': '@cloudflare/workerd-linux-64', 'linux-arm64': '@cloudflare/workerd-linux-arm64',
  'darwin-x64': '@cloudflare/workerd-darwin-64', 'darwin-arm64': '@cloudflare/workerd-darwin-arm64',
}, 'bin/workerd', 'workerd');

/** Debian's Chromium, and the flags that keep it off the network and the GPU. */
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Debian's headless Chromium driven by playwright-core, with its profile in `userDataDir`; the caller closes it. */
export async function chromiumContext(userDataDir: string, options: Record<string, unknown> = {}) {
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, ...options });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls until `probe` stops throwing (a server came up), for at most `ms`. */
export async function waitFor<T>(probe: () => Promise<T>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      return await probe();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what} did not come up in ${ms} ms (${last instanceof Error ? last.message : String(last)})`);
}

export interface EdgeWorker {
  url: string;
  proc: ChildProcessByStdio<null, Readable, Readable>;
  /** What workerd printed so far. */
  log: () => string;
}

/**
 * examples/edge-worker as shipped, with `modelFile` as its model, served by workerd on a free port of
 * 127.0.0.1: the example's files copied into `dir` in the repository's layout (config.capnp finds the bundle
 * at ../../dist/worker). Resolves once workerd answers; the caller stops `proc`.
 */
export async function serveEdgeWorker(modelFile: string, dir: string): Promise<EdgeWorker> {
  const example = path.join(dir, 'examples/edge-worker');
  mkdirSync(example, { recursive: true });
  for (const f of ['worker.js', 'config.capnp']) copyFileSync(path.join(ROOT, 'examples/edge-worker', f), path.join(example, f));
  copyFileSync(modelFile, path.join(example, 'model.vimq'));
  cpSync(path.join(ROOT, 'dist/worker'), path.join(dir, 'dist/worker'), { recursive: true });
  return serveWorkerd(example);
}

/**
 * `workerd serve config.capnp` in `dir`, its socket "http" on a free port of 127.0.0.1. Resolves once workerd
 * answers; the caller stops `proc`.
 */
export async function serveWorkerd(dir: string): Promise<EdgeWorker> {
  const port = await freePort();
  const proc = spawn(workerdBinary(), ['serve', 'config.capnp', '--socket-addr', `http=127.0.0.1:${port}`],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const url = `http://127.0.0.1:${port}/`;
  try {
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`workerd exited: ${log}`);
      return fetch(url, { method: 'OPTIONS' });
    }, 30_000, 'workerd');
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  return { url, proc, log: () => log };
}

export interface TopPrediction { label: string; index: number; score: number }

/** Largest score difference between two top-k lists, after checking that their labels are identical. */
export function compareTop(a: TopPrediction[], b: TopPrediction[], what: string): number {
  if (JSON.stringify(a.map((p) => [p.label, p.index])) !== JSON.stringify(b.map((p) => [p.label, p.index]))) {
    throw new Error(`${what}: top labels differ:\n${JSON.stringify(a)}\n${JSON.stringify(b)}`);
  }
  return Math.max(...a.map((p, i) => Math.abs(p.score - b[i].score)));
}

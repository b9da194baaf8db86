// Shared set-up of the cross-host tests: a converted model, the built bundles, the runtimes' binaries
// (which arrive with npm install through the `deno` and `workerd` packages' optionalDependencies: no
// install script and no download), free ports.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { convertCheckpoint } from '../../src/convert/checkpoint.js';

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
 * Builds what the hosts load when it is missing or older than its sources: dist/browser, dist/worker and
 * dist/deno (esbuild, < 1 s) and dist/src (tsc, for the Node example's `import 'vimedge'`).
 */
export function ensureBuilt(): void {
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0 && !(cmd.endsWith('tsc') && existsSync(path.join(ROOT, 'dist/src/index.js')))) {
      throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
    }
  };
  const wasm = path.join(ROOT, 'build/vimedge.wasm');
  if (!existsSync(wasm)) run('npm', ['run', '--silent', 'build:wasm']);
  const sources = ['src/index.ts', 'src/api.ts', 'src/hosts/web.ts', 'src/hosts/web-decode.ts', 'src/hosts/browser.ts', 'src/hosts/worker.ts'];
  if (sources.some((s) => newer(path.join(ROOT, s), path.join(ROOT, 'dist/src/index.js')))) {
    run(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json']);
  }
  run(process.execPath, ['scripts/build-web.mjs']);
}

function platformBinary(pkg: string, relative: string): string | undefined {
  try {
    const file = path.join(path.dirname(require.resolve(`${pkg}/package.json`)), relative);
    return existsSync(file) ? file : undefined;
  } catch {
    return undefined;
  }
}

/** Deno's binary from its platform package (@deno/linux-x64-glibc, ...), else the `deno` package's launcher. */
export function denoBinary(): string {
  const plat = `${process.platform}-${process.arch}`;
  const pkg = { 'linux-x64': '@deno/linux-x64-glibc', 'linux-arm64': '@deno/linux-arm64-glibc', 'darwin-x64': '@deno/darwin-x64', 'darwin-arm64': '@deno/darwin-arm64' }[plat];
  return (pkg && platformBinary(pkg, 'deno')) ?? path.join(ROOT, 'node_modules/.bin/deno');
}

/** workerd's binary from its platform package (@cloudflare/workerd-linux-64, ...), else the launcher. */
export function workerdBinary(): string {
  const plat = `${process.platform}-${process.arch}`;
  const pkg = { 'linux-x64': '@cloudflare/workerd-linux-64', 'linux-arm64': '@cloudflare/workerd-linux-arm64', 'darwin-x64': '@cloudflare/workerd-darwin-64', 'darwin-arm64': '@cloudflare/workerd-darwin-arm64' }[plat];
  return (pkg && platformBinary(pkg, 'bin/workerd')) ?? path.join(ROOT, 'node_modules/.bin/workerd');
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

export interface TopPrediction { label: string; index: number; score: number }

/** Largest score difference between two top-k lists, after checking that their labels are identical. */
export function compareTop(a: TopPrediction[], b: TopPrediction[], what: string): number {
  if (JSON.stringify(a.map((p) => [p.label, p.index])) !== JSON.stringify(b.map((p) => [p.label, p.index]))) {
    throw new Error(`${what}: top labels differ:\n${JSON.stringify(a)}\n${JSON.stringify(b)}`);
  }
  return Math.max(...a.map((p, i) => Math.abs(p.score - b[i].score)));
}

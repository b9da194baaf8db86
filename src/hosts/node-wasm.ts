/** Node: the compiled kernels, read from the package's build/ folder (made by `npm run build:wasm`). */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { fail } from '../errors.js';

/** The package root: the nearest folder above this module holding package.json (works from src/ and dist/). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) fail('BAD_ARGUMENT', 'cannot find the vimedge package root');
    dir = up;
  }
  return dir;
}

let cached: Promise<Uint8Array> | undefined;

export function readKernelWasm(): Promise<Uint8Array> {
  const file = path.join(packageRoot(), 'build', 'vimedge.wasm');
  if (!existsSync(file)) fail('BAD_ARGUMENT', `${file} is missing: run \`npm run build:wasm\``);
  return cached ??= readFile(file);
}

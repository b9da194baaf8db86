/**
 * Node host: where files and URLs are read, for the API and the CLI alike (paths and file: URLs from disk,
 * http(s): URLs fetched), with one-line errors; and the shipped default model's path.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { packageRoot } from './node-wasm.js';
import { fetchBytes } from './loading.js';
import { fail } from '../errors.js';

/** The best W8A8 file of docs/QUANTIZATION.md (mambaquant): 0.04 points below fp32, a third of its size. */
export const DEFAULT_MODEL = 'models/vim-fmnist.w8a8.vimq';

export function defaultModelPath(): string {
  return path.join(packageRoot(), DEFAULT_MODEL);
}

/** A file's bytes; a missing or unreadable one fails as BAD_IMAGE for an image, BAD_ARGUMENT otherwise. */
export async function readFileChecked(file: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    return fail(what === 'image' ? 'BAD_IMAGE' : 'BAD_ARGUMENT', `${file}: ${why}`);
  }
}

/** A path, a file: URL (read from disk) or an http(s): URL (fetched), and the name its errors will use. */
export async function readSource(source: string | URL, what: string): Promise<{ bytes: Uint8Array; name: string }> {
  const url = source instanceof URL ? source : /^(https?|file):/i.test(source) ? new URL(source) : undefined;
  if (url && url.protocol !== 'file:') return { bytes: await fetchBytes(url), name: url.href };
  const file = url ? fileURLToPath(url) : (source as string);
  return { bytes: await readFileChecked(file, what), name: file };
}

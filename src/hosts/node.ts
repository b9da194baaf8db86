/** Node host: the shipped default model's path, and files read with one-line errors. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { packageRoot } from './node-wasm.js';
import { fail } from '../errors.js';

/** The best W8A8 file of docs/QUANTIZATION.md (mambaquant): 0.04 points below fp32, a third of its size. */
export const DEFAULT_MODEL = 'models/vim-fmnist.w8a8.vimq';

export function defaultModelPath(): string {
  return path.join(packageRoot(), DEFAULT_MODEL);
}

export async function readFileChecked(file: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    return fail(what === 'image' ? 'BAD_IMAGE' : 'BAD_ARGUMENT', `${file}: ${why}`);
  }
}

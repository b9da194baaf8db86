/**
 * Node host: where files and URLs are read, for the API and the CLI alike (paths and file: URLs from disk,
 * http(s): URLs fetched), with one-line errors; and where the installed package's default model is.
 */
import { existsSync, readFileSync, constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { checkAborted, fetchBytes, type ReadOptions } from './loading.js';
import { fail, VimedgeError } from '../errors.js';
import type { FileReader } from '../model/model-file.js';

/** The best W8A8 file of docs/QUANTIZATION.md (mambaquant): 0.04 points below fp32, a third of its size. */
export const DEFAULT_MODEL = 'models/vim-fmnist.w8a8.vimq';

function isVimedgeRoot(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === 'vimedge';
  } catch {
    return false;
  }
}

/**
 * The vimedge package's folder: the nearest above this module (src/hosts/ in a checkout, dist/src/hosts/
 * installed); inside a bundle (esbuild, ncc), where this module is part of the bundle's file, the `vimedge`
 * package installed where the bundle runs from. Undefined when there is none (a bundle deployed alone).
 */
export function packageRoot(): string | undefined {
  // A CommonJS bundle has no import.meta.url: there this module is in the file __filename names.
  const here = typeof import.meta.url === 'string' ? fileURLToPath(import.meta.url)
    : typeof __filename === 'string' ? __filename : path.join(process.cwd(), 'index.js');
  for (let dir = path.dirname(here); ; dir = path.dirname(dir)) {
    if (isVimedgeRoot(dir)) return dir;
    if (path.dirname(dir) === dir) break;
  }
  for (const from of [here, path.join(process.cwd(), 'index.js')]) {
    try {
      return path.dirname(createRequire(from).resolve('vimedge/package.json'));
    } catch {
      // not installed where this bundle runs from: try the working directory, then give up
    }
  }
  return undefined;
}

/** The default model's path (for the CLI's defaults and help; it may not exist, see defaultModel). */
export function defaultModelPath(): string {
  return path.join(packageRoot() ?? 'node_modules/vimedge', DEFAULT_MODEL);
}

/** The default model's path, or a one-line error for the package's user when it is not installed. */
export function defaultModel(): string {
  const file = defaultModelPath();
  if (!existsSync(file)) {
    fail('BAD_ARGUMENT', `the default model (vimedge/${DEFAULT_MODEL}) is not installed where this code runs `
      + '(a bundle deployed without node_modules?): pass loadClassifier a model path, URL or bytes');
  }
  return file;
}

/** Largest file read (Node's own limit for one Buffer read is about this). */
export const MAX_FILE_BYTES = 2 ** 31 - 1;

/** Bytes read at a time: a progress report and an abort check each. */
const READ_CHUNK = 4 * 1024 * 1024;

/**
 * Opens a regular file (a link to one is followed) for `use`; a missing or unreadable one, a folder, a device
 * (`/dev/zero` never ends), a FIFO (blocks until a writer comes) or a socket fails as BAD_IMAGE for an image,
 * BAD_ARGUMENT otherwise. The kind and size are taken from the opened file, so a swap between the check and
 * the read changes nothing; opening does not block (O_NONBLOCK), even on a FIFO. The file is closed when
 * `use` returns. Read in chunks: each reports the furthest byte read so far to `onProgress`, and `signal`
 * stops the reading between two (ABORTED).
 */
export async function withFileChecked<T>(file: string, what: string, use: (reader: FileReader) => Promise<T>,
                                         options: ReadOptions = {}): Promise<T> {
  const { onProgress, signal } = options;
  const refuse = (why: string): never => fail(what === 'image' ? 'BAD_IMAGE' : 'BAD_ARGUMENT', `${file}: ${why}`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    const info = await handle.stat();
    if (info.isDirectory()) refuse('is a directory');
    if (!info.isFile()) refuse('is not a regular file (a device, FIFO or socket)');
    if (info.size > MAX_FILE_BYTES) refuse(`is ${info.size} bytes, over the limit of ${MAX_FILE_BYTES}`);
    const opened = handle;
    let furthest = 0;
    return await use({
      size: info.size,
      async read(into, position) {
        let at = 0;
        for (let n = 1; at < into.length && n > 0; at += n) {
          checkAborted(signal, file);
          n = (await opened.read(into, at, Math.min(READ_CHUNK, into.length - at), position + at)).bytesRead;
          furthest = Math.max(furthest, position + at + n);
          onProgress?.({ loaded: furthest, total: info.size });
        }
        if (at < into.length) refuse(`ended at byte ${position + at}, before its size of ${info.size} (changed while being read)`);
      },
    });
  } catch (e) {
    if (e instanceof VimedgeError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    return refuse(code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message);
  } finally {
    await handle?.close();
  }
}

/** A regular file's bytes, checked and read as withFileChecked does. */
export async function readFileChecked(file: string, what: string, options: ReadOptions = {}): Promise<Uint8Array> {
  return withFileChecked(file, what, async (reader) => {
    const bytes = new Uint8Array(reader.size);
    await reader.read(bytes, 0);
    return bytes;
  }, options);
}

/**
 * A path, a file: URL (read from disk) or an http(s): URL (fetched within the limits), and the name its errors
 * will use: Node's `ReadPath` (loading.ts).
 */
export async function readSource(source: string | URL, what: string, options?: ReadOptions): Promise<{ bytes: Uint8Array; name: string }> {
  const file = localPath(source);
  if (file !== undefined) return { bytes: await readFileChecked(file, what, options), name: file };
  const url = new URL(source);
  return { bytes: await fetchBytes(url, url.href, options), name: url.href };
}

/** The file a path or file: URL names; undefined for an http(s): URL. */
export function localPath(source: string | URL): string | undefined {
  const url = source instanceof URL ? source : /^(https?|file):/i.test(source) ? new URL(source) : undefined;
  if (url === undefined) return source as string;
  return url.protocol === 'file:' ? fileURLToPath(url) : undefined;
}

/**
 * Node entry (`vimedge` under the `node` condition): the public API of docs/API.md, with files read from
 * disk, images decoded by sharp (src/hosts/node-decode.ts) and the kernels read from the package's
 * build/vimedge.wasm. Browsers, Deno and workerd get the same API from src/hosts/browser.ts and worker.ts.
 */
import { fileURLToPath } from 'node:url';
import {
  asBytes, compileWasm, createClassifier, fetchBytes, isBinary, isRawImage, threadCount, DEFAULT_MAX_PIXELS,
  type BinaryData, type ClassifyOptions, type ImageClassifier, type LoadOptions, type RawImage,
} from './api.js';
import { decodeImageBytes } from './hosts/node-decode.js';
import { defaultModelPath, readFileChecked } from './hosts/node.js';
import { readKernelWasm } from './hosts/node-wasm.js';
import { createNodeThreads } from './hosts/node-threads.js';
import { fail } from './errors.js';

export { VimedgeError } from './api.js';
export type {
  BinaryData, ClassifyOptions, ErrorCode, ImageClassifier, LoadOptions, ModelInfo, Prediction, PreprocessSpec,
  RawImage, VimConfig, WasmSource,
} from './api.js';

/** A model: a path, a file: or http(s): URL, or the file's bytes. */
export type ModelSource = string | URL | BinaryData;

/** An image: a path, a file: or http(s): URL, encoded bytes (any format sharp reads), or decoded pixels. */
export type NodeImage = string | URL | BinaryData | RawImage;

export type NodeClassifier = ImageClassifier<NodeImage>;

/** Paths and file: URLs are read from disk, http(s): URLs fetched. */
async function read(source: string | URL, what: 'model' | 'image'): Promise<{ bytes: Uint8Array; name: string }> {
  const url = source instanceof URL ? source : /^(https?|file):/i.test(source) ? new URL(source) : undefined;
  if (url && url.protocol !== 'file:') return { bytes: await fetchBytes(url), name: url.href };
  const file = url ? fileURLToPath(url) : (source as string);
  return { bytes: await readFileChecked(file, what), name: file };
}

async function decode(image: NodeImage, options: ClassifyOptions): Promise<RawImage> {
  if (isRawImage(image)) return image;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (isBinary(image)) return decodeImageBytes(asBytes(image), 'image', { maxPixels });
  if (typeof image === 'string' || image instanceof URL) {
    const { bytes, name } = await read(image, 'image');
    return decodeImageBytes(bytes, name, { maxPixels });
  }
  return fail('BAD_IMAGE', 'image: expected a path, a URL, bytes or decoded pixels ({ width, height, channels, data })');
}

/**
 * Loads a model (.vimq, or a .pth / .safetensors checkpoint converted on the fly); without a source, the
 * shipped default model (models/vim-fmnist.w8a8.vimq).
 */
export async function loadClassifier(source: ModelSource = defaultModelPath(), options: LoadOptions = {}): Promise<NodeClassifier> {
  if (options === null || typeof options !== 'object') fail('BAD_ARGUMENT', 'loadClassifier options must be an object');
  let model: { bytes: Uint8Array; name: string };
  if (isBinary(source)) model = { bytes: asBytes(source), name: 'model' };
  else if (typeof source === 'string' || source instanceof URL) model = await read(source, 'model');
  else return fail('BAD_ARGUMENT', 'model: expected a path, a URL or bytes');
  const threads = threadCount(options);
  if (threads > 1 && options.wasm !== undefined) fail('BAD_ARGUMENT', 'threads > 1 runs the package\'s threads build: leave out wasm');
  const wasm = options.wasm === undefined ? await readKernelWasm()
    : await compileWasm(options.wasm, async (url) => (await read(url, 'model')).bytes, 'vimedge.wasm');
  return createClassifier(model.bytes, model.name, wasm, decode, options.convert, threads > 1 ? await createNodeThreads(threads) : undefined);
}

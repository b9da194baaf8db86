/**
 * Node entry (`vimedge` under the `node` condition): the public API of docs/API.md, with files read from
 * disk (src/hosts/node.ts), images decoded by sharp where it is installed, else by the jSquash decoders
 * (src/hosts/node-decode.ts), and the kernels the package carries inline (src/hosts/node-wasm.ts).
 * Browsers, Deno and workerd get the same API from src/hosts/browser.ts and worker.ts.
 */
import type { BinaryData, FetchLimits, LoadOptions } from './api.js';
import { createClassifier, type ImageClassifier } from './classifier.js';
import { isRawImage, type RawImage } from './preprocess/raw-image.js';
import { asBytes, checkLoadOptions, compileWasm, fetchLimits, isBinary } from './hosts/loading.js';
import { decodeImageBytes } from './hosts/node-decode.js';
import { defaultModel, localPath, readSource, withFileChecked } from './hosts/node.js';
import type { FileReader } from './model/model-file.js';
import { readKernelWasm } from './hosts/node-wasm.js';
import { createNodeThreads } from './hosts/node-threads.js';
import { fail } from './errors.js';

export * from './api.js';

/** A model: a path, a file: or http(s): URL, or the file's bytes. */
export type ModelSource = string | URL | BinaryData;

/** An image: a path, a file: or http(s): URL, encoded bytes (any format sharp reads), or decoded pixels. */
export type NodeImage = string | URL | BinaryData | RawImage;

export type NodeClassifier = ImageClassifier<NodeImage>;

/** The decoder of a classifier whose URLs are fetched within `limits`. */
const decoder = (limits?: FetchLimits) => async (image: NodeImage, maxPixels: number): Promise<RawImage> => {
  if (isRawImage(image)) return image;
  if (isBinary(image)) return decodeImageBytes(asBytes(image), 'image', { maxPixels });
  if (typeof image === 'string' || image instanceof URL) {
    const { bytes, name } = await readSource(image, 'image', limits);
    return decodeImageBytes(bytes, name, { maxPixels });
  }
  return fail('BAD_IMAGE', 'image: expected a path, a URL, bytes or decoded pixels ({ width, height, channels, data })');
};

/**
 * Loads a model (.vimq, or a .pth / .safetensors checkpoint converted on the fly); without a source, the
 * shipped default model (models/vim-fmnist.w8a8.vimq).
 */
export async function loadClassifier(source?: ModelSource, options: LoadOptions = {}): Promise<NodeClassifier> {
  const threads = checkLoadOptions(options);
  source ??= defaultModel();
  const limits = fetchLimits(options.fetch);
  if (!isBinary(source) && typeof source !== 'string' && !(source instanceof URL)) {
    return fail('BAD_ARGUMENT', 'model: expected a path, a URL or bytes');
  }
  if (threads > 1 && options.wasm !== undefined) fail('BAD_ARGUMENT', 'threads > 1 runs the package\'s threads build: leave out wasm');
  const load = async (model: Uint8Array | FileReader, name: string) => createClassifier({
    model, name, decode: decoder(limits), convert: options.convert, maxMemory: options.maxMemory,
    kernels: options.wasm === undefined ? await readKernelWasm()
      : await compileWasm(options.wasm, async (url) => (await readSource(url, 'model', limits)).bytes, 'vimedge.wasm'),
    threads: threads > 1 ? await createNodeThreads(threads) : undefined,
  });
  if (isBinary(source)) return load(asBytes(source), 'model');
  // A file is read piece by piece, so that a .vimq's weights go straight into WebAssembly memory.
  const file = localPath(source);
  if (file !== undefined) return withFileChecked(file, 'model', (reader) => load(reader, file));
  const fetched = await readSource(source, 'model', limits);
  return load(fetched.bytes, fetched.name);
}

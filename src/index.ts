/**
 * Node entry (`vimedge` under the `node` condition): the public API of docs/API.md, with files read from
 * disk (src/hosts/node.ts), images decoded by sharp where it is installed, else by the jSquash decoders
 * (src/hosts/node-decode.ts), and the kernels the package carries inline (src/hosts/node-wasm.ts).
 * Browsers, Deno and workerd get the same API from src/hosts/browser.ts and worker.ts.
 */
import type { ImageInput, LoadOptions, ModelSource } from './api.js';
import { createClassifier, type ImageClassifier } from './classifier.js';
import { compileWasm, fetchLimits, isByteSource, sourceBytes } from './hosts/loading.js';
import { checkLoadOptions } from './hosts/load-options.js';
import { imageDecoder, type ImageHost } from './hosts/image-input.js';
import { classifyHandler } from './hosts/handler.js';
import { decodeImageBytes } from './hosts/node-decode.js';
import { defaultModel, localPath, readSource, withFileChecked } from './hosts/node.js';
import type { FileReader } from './model/model-file.js';
import { readKernelWasm } from './hosts/node-wasm.js';
import { createNodeThreads } from './hosts/node-threads.js';
import { fail } from './errors.js';

export * from './api.js';

/** An image: every form of the input contract (src/api.ts `ImageInput`); paths and file: URLs read from disk. */
export type NodeImage = ImageInput;

export type NodeClassifier = ImageClassifier<NodeImage>;

/** Node's images: files and URLs read by node.ts, decoded by sharp where it is installed (node-decode.ts). */
const NODE_IMAGES: ImageHost = {
  read: readSource,
  decode: (bytes, name, maxPixels) => decodeImageBytes(bytes, name, { maxPixels }),
  forms: 'a path, a URL, bytes, a Blob, a Response, pixels ({ width, height, channels?, data }) or a preprocessed Float32Array',
};

/** An image's RGB pixels as `classify` sees them, without a model (src/hosts/image-input.ts). */
export const decodeImage = imageDecoder<NodeImage>(() => NODE_IMAGES);

/**
 * Loads a model (.vimq, or a .pth / .safetensors checkpoint converted on the fly); without a source, the
 * shipped default model (models/vim-fmnist.w8a8.vimq).
 */
export async function loadClassifier(source?: ModelSource, options: LoadOptions = {}): Promise<NodeClassifier> {
  const threads = checkLoadOptions(options);
  source ??= defaultModel();
  if (!isByteSource(source)) fail('BAD_ARGUMENT', 'model: expected a path, a URL, bytes, a Blob or a Response');
  if (threads > 1 && options.wasm !== undefined) fail('BAD_ARGUMENT', 'threads > 1 runs the package\'s threads build: leave out wasm');
  const { onProgress, signal } = options;
  const limits = fetchLimits(options.fetch);
  // The workers start (their own threads, tens of ms) while this thread reads the model.
  const workers = threads > 1 ? createNodeThreads(threads) : undefined;
  workers?.catch(() => undefined);   // a failed start is reported where it is awaited, not as unhandled meanwhile
  const load = async (model: Uint8Array | FileReader, name: string) => createClassifier({
    model, name, images: NODE_IMAGES, limits, convert: options.convert, maxMemory: options.maxMemory, signal,
    kernels: options.wasm === undefined ? await readKernelWasm()
      : await compileWasm(options.wasm, async (url) => (await readSource(url, 'model', limits)).bytes, 'vimedge.wasm'),
    threads: await workers,
  });
  try {
    // A file is read piece by piece, so that a .vimq's weights go straight into WebAssembly memory.
    const file = typeof source === 'string' || source instanceof URL ? localPath(source) : undefined;
    if (file !== undefined) return await withFileChecked(file, 'model', (reader) => load(reader, file), { onProgress, signal });
    const read = await sourceBytes(source, 'model', readSource, { ...limits, onProgress, signal });
    return await load(read.bytes, read.name);
  } catch (e) {
    void workers?.then((t) => t.pool.dispose(), () => undefined);
    throw e;
  }
}

/**
 * A Request → Response function classifying POSTed images (src/hosts/handler.ts), for Node's fetch-style
 * servers; without `model`, the shipped default model.
 */
export const createClassifyHandler = classifyHandler<ModelSource | undefined>((source) => loadClassifier(source));

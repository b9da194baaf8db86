/**
 * The public API, the same on every host (docs/API.md):
 *
 *   const clf = await loadClassifier(source, options?);   // per host: src/index.ts, src/hosts/{web,worker}.ts
 *   const top = await clf.classify(image, { topK: 5 });   // [{ label, index, score }], best first
 *   clf.info;                                              // labels, config, preprocessing, source
 *   clf.dispose();
 *
 * This module is host-neutral (no Node built-ins, no DOM): the hosts supply how bytes are fetched or read and
 * how an image becomes RGB pixels; everything after the pixels is src/classifier.ts, one path on every host.
 */
import { Classifier, type Prediction } from './classifier.js';
import { loadModel, type Threads } from './model/model-file.js';
import type { ModelMetadata } from './model/contract.js';
import type { ConvertOptions } from './convert/checkpoint.js';
import type { RawImage } from './preprocess/pipeline.js';
import { fail, VimedgeError } from './errors.js';

export { VimedgeError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { Prediction } from './classifier.js';
export type { RawImage } from './preprocess/pipeline.js';
export type { PreprocessSpec } from './preprocess/pipeline.js';
export type { VimConfig } from './model/config.js';

/** Bytes in any of the forms the web platform hands them out. */
export type BinaryData = Uint8Array | ArrayBuffer | ArrayBufferView;

/**
 * Where compiled WebAssembly comes from: its bytes, a compiled module (what workerd and bundlers give for a
 * `.wasm` import), a URL or string to fetch, or a fetch Response.
 */
export type WasmSource = BinaryData | WebAssembly.Module | URL | string | Response;

export interface LoadOptions {
  /** The kernels (`build/vimedge.wasm`); each host has a default (docs/API.md). */
  wasm?: WasmSource;
  /** Applied when the source is a checkpoint (.pth / .safetensors) converted on the fly. */
  convert?: ConvertOptions;
  /**
   * Threads one image is split over (default 1). Node only: worker_threads on shared WebAssembly memory,
   * logits identical to one thread; with `wasm` given, only 1.
   */
  threads?: number;
}

export interface ClassifyOptions {
  /** How many predictions to return, best first (default 5, at most the number of classes). */
  topK?: number;
  /** Refuse encoded images with more pixels than this (default 100 megapixels). */
  maxPixels?: number;
}

/** What `classifier.info` tells: the model file's metadata, without its tensor table. */
export type ModelInfo = Omit<ModelMetadata, 'tensors'> & {
  /** Bytes of WebAssembly memory the model holds now (weights + planned activations); 0 once disposed. */
  readonly memoryBytes: number;
};

export interface ImageClassifier<Image> {
  readonly info: ModelInfo;
  /** Decodes (where needed), preprocesses exactly as the model was evaluated, runs the model. */
  classify(image: Image, options?: ClassifyOptions): Promise<Prediction[]>;
  /** Raw logits for an image (the same decode and preprocessing as `classify`). */
  logits(image: Image, options?: ClassifyOptions): Promise<Float32Array>;
  /** Releases the model's memory; later calls reject with a VimedgeError. */
  dispose(): void;
}

/** Turns whatever a host accepts as an image into RGB (or greyscale) pixels. */
export type ImageDecoder<Image> = (image: Image, options: ClassifyOptions) => Promise<RawImage>;

export const DEFAULT_MAX_PIXELS = 100_000_000;

/** Checks the options every host takes, before any decoding work. */
export function checkClassifyOptions(options: ClassifyOptions): void {
  if (options === null || typeof options !== 'object') fail('BAD_ARGUMENT', 'classify options must be an object');
  const { topK, maxPixels } = options;
  if (topK !== undefined && (!Number.isInteger(topK) || topK < 1)) {
    fail('BAD_ARGUMENT', `topK must be a positive integer, got ${topK}`);
  }
  if (maxPixels !== undefined && (!Number.isSafeInteger(maxPixels) || maxPixels < 1)) {
    fail('BAD_ARGUMENT', `maxPixels must be a positive integer, got ${maxPixels}`);
  }
}

class VimClassifier<Image> implements ImageClassifier<Image> {
  readonly info: ModelInfo;
  #core: Classifier | undefined;
  readonly #decode: ImageDecoder<Image>;

  constructor(core: Classifier, decode: ImageDecoder<Image>) {
    const { tensors: _tensors, ...metadata } = core.info;
    // Read at each access, not copied: a long-running service can watch the memory stay flat.
    this.info = Object.freeze(Object.defineProperty(metadata as ModelInfo, 'memoryBytes', {
      enumerable: true, get: () => this.#core?.memoryBytes ?? 0,
    }));
    this.#core = core;
    this.#decode = decode;
  }

  #live(): Classifier {
    return this.#core ?? fail('BAD_ARGUMENT', 'classifier has been disposed');
  }

  async #pixels(image: Image, options: ClassifyOptions): Promise<RawImage> {
    this.#live();
    checkClassifyOptions(options);
    return this.#decode(image, options);
  }

  async classify(image: Image, options: ClassifyOptions = {}): Promise<Prediction[]> {
    const pixels = await this.#pixels(image, options);
    const k = Math.min(options.topK ?? 5, this.info.labels.length);
    return this.#live().classifyPixels(pixels, { topK: k }).top;
  }

  async logits(image: Image, options: ClassifyOptions = {}): Promise<Float32Array> {
    const pixels = await this.#pixels(image, options);
    return this.#live().classifyPixels(pixels, { topK: 1 }).logits;
  }

  dispose(): void {
    this.#core?.dispose();
    this.#core = undefined;
  }
}

/** Model bytes + kernels -> a classifier whose images go through `decode`. */
export async function createClassifier<Image>(model: Uint8Array, name: string,
                                              kernels: Uint8Array | WebAssembly.Module,
                                              decode: ImageDecoder<Image>,
                                              convert: ConvertOptions = {}, threads?: Threads): Promise<ImageClassifier<Image>> {
  let loaded;
  try {
    loaded = await loadModel(model, name, kernels, convert, threads);
  } catch (e) {
    threads?.pool.dispose();
    throw e;
  }
  const { metadata, model: vim } = loaded;
  return new VimClassifier(new Classifier(metadata, vim), decode);
}

/** options.threads checked: an integer from 1 to 256. */
export function threadCount(options: LoadOptions): number {
  const n = options.threads ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 256) fail('BAD_ARGUMENT', `threads must be an integer from 1 to 256, got ${String(n)}`);
  return n;
}

/** A view of any binary form as a Uint8Array (no copy). */
export function asBytes(data: BinaryData): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return fail('BAD_ARGUMENT', 'expected bytes (Uint8Array, ArrayBuffer or a typed array)');
}

export function isBinary(value: unknown): value is BinaryData {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/** A fetch Response's body, or a one-line error naming the URL and the status. */
export async function responseBytes(response: Response, what: string): Promise<Uint8Array> {
  if (!response.ok) fail('BAD_ARGUMENT', `${what}: HTTP ${response.status} ${response.statusText}`.trim());
  return new Uint8Array(await response.arrayBuffer());
}

/** Fetches a URL; network errors become VimedgeErrors naming the URL. */
export async function fetchBytes(url: URL | string, what = String(url)): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    return fail('BAD_ARGUMENT', `${what}: cannot fetch (${err instanceof Error ? err.message : String(err)})`);
  }
  return responseBytes(response, what);
}

/** Compiles kernels or decoder WebAssembly from any WasmSource; `read` serves strings and URLs. */
export async function compileWasm(source: WasmSource, read: (url: URL | string) => Promise<Uint8Array>,
                                  what: string): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  let bytes: Uint8Array;
  if (isBinary(source)) bytes = asBytes(source);
  else if (typeof Response !== 'undefined' && source instanceof Response) bytes = await responseBytes(source, what);
  else if (typeof source === 'string' || source instanceof URL) bytes = await read(source);
  else return fail('BAD_ARGUMENT', `${what}: expected bytes, a WebAssembly.Module, a URL or a Response`);
  try {
    return await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    return fail('BAD_ARGUMENT', `${what}: not valid WebAssembly (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** A RawImage given directly (decoded pixels), recognised by shape; the pipeline validates it fully. */
export function isRawImage(value: unknown): value is RawImage {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Partial<RawImage>;
  return typeof v.width === 'number' && typeof v.height === 'number' && (v.channels === 1 || v.channels === 3)
    && v.data instanceof Uint8Array;
}

/** Re-raises anything that is not already a VimedgeError as one with `code`. */
export function asVimedgeError(err: unknown, code: 'BAD_IMAGE' | 'BAD_ARGUMENT', prefix: string): never {
  if (err instanceof VimedgeError) throw err;
  return fail(code, `${prefix} (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
}

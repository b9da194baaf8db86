// Symbol.dispose in the emitted types, for projects whose `lib` predates it (preserve: kept in the .d.ts).
/// <reference lib="esnext.disposable" preserve="true" />
/**
 * The classifier, one path on every host: an image in any form of the input contract (hosts/image-input.ts) is
 * read and decoded to pixels by the host's decoder, preprocessed exactly as the model was evaluated, run, and
 * ranked; `embed` stops at the head's input. The hosts
 * (src/index.ts, src/hosts/web.ts) supply the model bytes, the kernels and the decoder; the public contract
 * around it is src/api.ts.
 */
import { loadModel, loadModelFrom, type FileReader, type Threads } from './model/model-file.js';
import type { ModelMetadata } from './model/contract.js';
import type { ConvertOptions } from './convert/checkpoint.js';
import type { VimModel } from './model/vim-model.js';
import { preprocess } from './preprocess/pipeline.js';
import { checkMaxPixels, DEFAULT_MAX_PIXELS, release } from './preprocess/raw-image.js';
import { resolveImage, type ImageHost } from './hosts/image-input.js';
import { checkAborted, type ReadOptions } from './hosts/loading.js';
import { checkOptions, fail, VimedgeError } from './errors.js';

export interface Prediction {
  label: string;
  index: number;
  score: number;
}

export interface ClassifyOptions {
  /** How many predictions to return, best first (default 5, at most the number of classes). */
  topK?: number;
  /** Refuse images with more pixels than this, encoded ones from their header (default 100 megapixels). */
  maxPixels?: number;
  /** Also return the logits, from the same forward pass: `{ predictions, logits }` instead of the predictions. */
  logits?: boolean;
}

const CLASSIFY_OPTION_NAMES: Record<keyof ClassifyOptions, true> = { topK: true, maxPixels: true, logits: true };

/** What `classify` returns with `{ logits: true }`. */
export interface Classification {
  predictions: Prediction[];
  logits: Float32Array;
}

/** `classify`'s answer for one image under these options. */
export type ClassifyResult<O> = O extends { logits: true } ? Classification : Prediction[];

/** What `classifier.info` tells: the model file's metadata, without its tensor table. */
export type ModelInfo = Omit<ModelMetadata, 'tensors'> & {
  /** Bytes of WebAssembly memory the model holds now (weights + planned activations); 0 once disposed. */
  readonly memoryBytes: number;
};

export interface ImageClassifier<Image> {
  readonly info: ModelInfo;
  /**
   * Reads and decodes (where needed), preprocesses exactly as the model was evaluated, runs the model; an array
   * of images gives an array of answers, in order.
   */
  classify<O extends ClassifyOptions = {}>(image: Image, options?: O): Promise<ClassifyResult<O>>;
  classify<O extends ClassifyOptions = {}>(images: readonly Image[], options?: O): Promise<ClassifyResult<O>[]>;
  /** Raw logits for an image (the same decode and preprocessing as `classify`). */
  logits(image: Image, options?: ClassifyOptions): Promise<Float32Array>;
  /**
   * The head's input for an image: the class token after the final norm, `info.config.embedDim` values (for
   * retrieval, or a head trained elsewhere); `head(embed(x))` is `logits(x)`.
   */
  embed(image: Image, options?: Omit<ClassifyOptions, 'topK' | 'logits'>): Promise<Float32Array>;
  embed(images: readonly Image[], options?: Omit<ClassifyOptions, 'topK' | 'logits'>): Promise<Float32Array[]>;
  /** Releases the model's memory; later calls reject with a VimedgeError. */
  dispose(): void;
  [Symbol.dispose](): void;
}

const DEFAULT_TOP_K = 5;

/** Softmax in float64 (scores are compared across hosts to 1e-6). */
function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const p = Float64Array.from(logits, (v) => Math.exp(v - max));
  const sum = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / sum);
}

/** The k most probable labels, best first (ties: lower index first); what `classify` returns for these logits. */
export function rankLabels(logits: ArrayLike<number>, labels: string[], k: number): Prediction[] {
  const p = softmax(logits);
  return Array.from(p.keys())
    .sort((a, b) => p[b] - p[a] || a - b)
    .slice(0, k)
    .map((index) => ({ label: labels[index], index, score: p[index] }));
}

/** The classify options checked and defaulted, before any decoding work. */
export function resolveOptions(options?: ClassifyOptions): Required<ClassifyOptions> {
  const { topK = DEFAULT_TOP_K, maxPixels = DEFAULT_MAX_PIXELS, logits = false } = checkOptions(options, 'classify options', CLASSIFY_OPTION_NAMES);
  if (!Number.isInteger(topK) || topK < 1) fail('BAD_ARGUMENT', `topK must be a positive integer, got ${topK}`);
  checkMaxPixels(maxPixels);
  if (typeof logits !== 'boolean') fail('BAD_ARGUMENT', `logits must be true or false, got ${String(logits)}`);
  return { topK, maxPixels, logits };
}

/** `[Symbol.dispose]`, or the key TypeScript's `using` looks up where the runtime predates it. */
const DISPOSE: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('Symbol.dispose');

class Classifier<Image> implements ImageClassifier<Image> {
  readonly info: ModelInfo;
  #model: VimModel | undefined;
  readonly #host: ImageHost;
  readonly #limits: ReadOptions;

  constructor(metadata: ModelMetadata, model: VimModel, host: ImageHost, limits: ReadOptions) {
    const { tensors: _tensors, ...info } = metadata;
    // Read at each access, not copied: a long-running service can watch the memory stay flat.
    this.info = Object.freeze(Object.defineProperty(info as ModelInfo, 'memoryBytes', {
      enumerable: true, get: () => this.#model?.memoryBytes ?? 0,
    }));
    this.#model = model;
    this.#host = host;
    this.#limits = limits;
  }

  #live(): VimModel {
    return this.#model ?? fail('BAD_ARGUMENT', 'classifier has been disposed');
  }

  /** The model's input for one image: decoded and preprocessed, or a preprocessed tensor checked. */
  async #input(image: Image, maxPixels: number): Promise<Float32Array> {
    const resolved = await resolveImage(image, this.#host, maxPixels, this.#limits);
    if (!(resolved instanceof Float32Array)) {
      const input = preprocess(resolved.pixels, this.info.preprocess);
      if (resolved.owned) release(resolved.pixels.data);
      return input;
    }
    const { channels, crop } = this.info.preprocess, size = channels * crop * crop;
    if (resolved.length !== size) {
      fail('BAD_ARGUMENT', `image: a preprocessed Float32Array must be [C, H, W] = [${channels}, ${crop}, ${crop}] = ${size} values, got ${resolved.length}`);
    }
    if (!resolved.every(Number.isFinite)) fail('BAD_IMAGE', 'image: the preprocessed Float32Array holds NaN or Inf');
    return resolved;
  }

  /**
   * Options checked first, then each image read, preprocessed and run in turn (an array answers in order);
   * the model is looked up again after decoding, which may outlast a dispose().
   */
  async #each<R>(images: Image | readonly Image[], options: ClassifyOptions | undefined,
                 run: (model: VimModel, input: Float32Array, options: Required<ClassifyOptions>) => R): Promise<R | R[]> {
    this.#live();
    const resolved = resolveOptions(options);
    const one = async (image: Image) => run(this.#live(), await this.#input(image, resolved.maxPixels), resolved);
    if (!Array.isArray(images)) return one(images as Image);
    const results: R[] = [];
    for (const [i, image] of images.entries()) {
      try {
        results.push(await one(image));
      } catch (e) {
        throw e instanceof VimedgeError ? new VimedgeError(e.code, `images[${i}]: ${e.message}`) : e;
      }
    }
    return results;
  }

  classify<O extends ClassifyOptions = {}>(image: Image, options?: O): Promise<ClassifyResult<O>>;
  classify<O extends ClassifyOptions = {}>(images: readonly Image[], options?: O): Promise<ClassifyResult<O>[]>;
  classify(images: Image | readonly Image[], options?: ClassifyOptions): Promise<unknown> {
    return this.#each(images, options, (model, input, { topK, logits: withLogits }) => {
      const logits = checkedLogits(model.forward(input));
      const predictions = rankLabels(logits, this.info.labels, topK);
      return withLogits ? { predictions, logits } : predictions;
    });
  }

  async logits(image: Image, options?: ClassifyOptions): Promise<Float32Array> {
    return await this.#each(image, options, (model, input) => checkedLogits(model.forward(input))) as Float32Array;
  }

  embed(image: Image, options?: ClassifyOptions): Promise<Float32Array>;
  embed(images: readonly Image[], options?: ClassifyOptions): Promise<Float32Array[]>;
  embed(images: Image | readonly Image[], options?: ClassifyOptions): Promise<unknown> {
    return this.#each(images, options, (model, input) => {
      let features: Float32Array | undefined;
      model.forward(input, { classToken: (values) => { features = values.slice(); } });
      return features!;
    });
  }

  dispose(): void {
    this.#model?.dispose();
    this.#model = undefined;
  }

  [DISPOSE](): void {
    this.dispose();
  }
}

/** Weights and inputs are checked finite, but extreme ones can still overflow: never rank NaN scores. */
function checkedLogits(logits: Float32Array): Float32Array {
  if (!logits.every(Number.isFinite)) fail('BAD_MODEL', 'the model produced non-finite logits (NaN or Inf) for this image');
  return logits;
}

export interface ClassifierParts {
  /**
   * Model bytes, or a reader of the file (a .vimq's weights are then read straight into WebAssembly memory):
   * .vimq, or a .pth / .safetensors checkpoint converted on the fly with `convert`.
   */
  model: Uint8Array | FileReader;
  /** The model's name in error messages. */
  name: string;
  kernels: Uint8Array | WebAssembly.Module;
  /** How the host reads and decodes images (src/hosts/image-input.ts). */
  images: ImageHost;
  /** LoadOptions.fetch, checked: the limits on the images' URLs, Blobs and Responses. */
  limits: ReadOptions;
  convert?: ConvertOptions;
  /** A host's worker threads (Node); their pool is stopped if the model does not load. */
  threads?: Threads;
  /** LoadOptions.maxMemory. */
  maxMemory?: number;
  /** LoadOptions.signal: a model built after it fired is disposed. */
  signal?: AbortSignal;
}

/** Model bytes + kernels -> a classifier whose images go through the host's `images`. */
export async function createClassifier<Image>(parts: ClassifierParts): Promise<ImageClassifier<Image>> {
  const { model, name, kernels, images, limits, convert = {}, threads, maxMemory, signal } = parts;
  let loaded;
  try {
    checkAborted(signal, name);
    loaded = model instanceof Uint8Array ? await loadModel(model, name, kernels, convert, threads, maxMemory)
      : await loadModelFrom(model, name, kernels, convert, threads, maxMemory);
  } catch (e) {
    threads?.pool.dispose();
    throw e;
  }
  const classifier = new Classifier<Image>(loaded.metadata, loaded.model, images, limits);
  if (signal?.aborted) classifier.dispose();
  checkAborted(signal, name);
  return classifier;
}

/**
 * The classifier, one path on every host: an image in whatever form the host accepts is decoded to pixels by
 * the host's decoder, preprocessed exactly as the model was evaluated, run, and ranked. The hosts
 * (src/index.ts, src/hosts/web.ts) supply the model bytes, the kernels and the decoder; the public contract
 * around it is src/api.ts.
 */
import { loadModel, loadModelFrom, type FileReader, type Threads } from './model/model-file.js';
import type { ModelMetadata } from './model/contract.js';
import type { ConvertOptions } from './convert/checkpoint.js';
import type { VimModel } from './model/vim-model.js';
import { preprocess } from './preprocess/pipeline.js';
import { checkMaxPixels, DEFAULT_MAX_PIXELS, type RawImage } from './preprocess/raw-image.js';
import { fail } from './errors.js';

export interface Prediction {
  label: string;
  index: number;
  score: number;
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

/** Turns whatever a host accepts as an image into RGB (or greyscale) pixels, refusing more than maxPixels. */
export type ImageDecoder<Image> = (image: Image, maxPixels: number) => Promise<RawImage>;

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
function resolveOptions(options: ClassifyOptions): Required<ClassifyOptions> {
  if (options === null || typeof options !== 'object') fail('BAD_ARGUMENT', 'classify options must be an object');
  const { topK = DEFAULT_TOP_K, maxPixels = DEFAULT_MAX_PIXELS } = options;
  if (!Number.isInteger(topK) || topK < 1) fail('BAD_ARGUMENT', `topK must be a positive integer, got ${topK}`);
  checkMaxPixels(maxPixels);
  return { topK, maxPixels };
}

class Classifier<Image> implements ImageClassifier<Image> {
  readonly info: ModelInfo;
  #model: VimModel | undefined;
  readonly #decode: ImageDecoder<Image>;

  constructor(metadata: ModelMetadata, model: VimModel, decode: ImageDecoder<Image>) {
    const { tensors: _tensors, ...info } = metadata;
    // Read at each access, not copied: a long-running service can watch the memory stay flat.
    this.info = Object.freeze(Object.defineProperty(info as ModelInfo, 'memoryBytes', {
      enumerable: true, get: () => this.#model?.memoryBytes ?? 0,
    }));
    this.#model = model;
    this.#decode = decode;
  }

  #live(): VimModel {
    return this.#model ?? fail('BAD_ARGUMENT', 'classifier has been disposed');
  }

  /** Decode, preprocess, forward; the model is looked up again after decoding, which may outlast a dispose(). */
  async #run(image: Image, options: ClassifyOptions): Promise<{ logits: Float32Array; topK: number }> {
    this.#live();
    const { topK, maxPixels } = resolveOptions(options);
    const pixels = await this.#decode(image, maxPixels);
    const logits = this.#live().forward(preprocess(pixels, this.info.preprocess));
    // Weights and inputs are checked finite, but extreme ones can still overflow: never rank NaN scores.
    if (!logits.every(Number.isFinite)) fail('BAD_MODEL', 'the model produced non-finite logits (NaN or Inf) for this image');
    return { logits, topK };
  }

  async classify(image: Image, options: ClassifyOptions = {}): Promise<Prediction[]> {
    const { logits, topK } = await this.#run(image, options);
    return rankLabels(logits, this.info.labels, topK);
  }

  async logits(image: Image, options: ClassifyOptions = {}): Promise<Float32Array> {
    return (await this.#run(image, options)).logits;
  }

  dispose(): void {
    this.#model?.dispose();
    this.#model = undefined;
  }
}

export interface ClassifierParts<Image> {
  /**
   * Model bytes, or a reader of the file (a .vimq's weights are then read straight into WebAssembly memory):
   * .vimq, or a .pth / .safetensors checkpoint converted on the fly with `convert`.
   */
  model: Uint8Array | FileReader;
  /** The model's name in error messages. */
  name: string;
  kernels: Uint8Array | WebAssembly.Module;
  decode: ImageDecoder<Image>;
  convert?: ConvertOptions;
  /** A host's worker threads (Node); their pool is stopped if the model does not load. */
  threads?: Threads;
  /** LoadOptions.maxMemory. */
  maxMemory?: number;
}

/** Model bytes + kernels -> a classifier whose images go through `decode`. */
export async function createClassifier<Image>(parts: ClassifierParts<Image>): Promise<ImageClassifier<Image>> {
  const { model, name, kernels, decode, convert = {}, threads, maxMemory } = parts;
  let loaded;
  try {
    loaded = model instanceof Uint8Array ? await loadModel(model, name, kernels, convert, threads, maxMemory)
      : await loadModelFrom(model, name, kernels, convert, threads, maxMemory);
  } catch (e) {
    threads?.pool.dispose();
    throw e;
  }
  return new Classifier(loaded.metadata, loaded.model, decode);
}

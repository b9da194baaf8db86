/**
 * The public API, the same on every host (docs/API.md): what every entry exports besides its
 * `loadClassifier`, `decodeImage` and `createClassifyHandler` (each bound to the host) and its image type
 * (`ImageInput`, plus drawables in browsers).
 *
 *   const clf = await loadClassifier(source, options?);   // per host: src/index.ts, src/hosts/{browser,worker}.ts
 *   const top = await clf.classify(image, { topK: 5 });   // [{ label, index, score }], best first
 *   await clf.classify([a, b], { logits: true });          // [{ predictions, logits }, ...], one pass each
 *   await clf.embed(image);                                // the head's input: the final-normed class token
 *   clf.info;                                              // labels, config, preprocessing, source
 *   clf.dispose();                                         // or `using clf = ...` ([Symbol.dispose])
 *   const pixels = await decodeImage(image);               // the RGB pixels classify preprocesses
 *
 * Host-neutral (no Node built-ins, no DOM): the hosts supply how paths are read and how bytes become RGB
 * pixels (src/hosts/); every other step, from the input forms (hosts/image-input.ts) to the ranking
 * (src/classifier.ts), is one path on every host.
 */
import type { ConvertOptions } from './convert/checkpoint.js';

export { VimedgeError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { Classification, ClassifyOptions, ImageClassifier, ModelInfo, Prediction } from './classifier.js';
export type { ClassifyHandlerOptions } from './hosts/handler.js';
export { preprocess } from './hosts/image-input.js';
export type { DecodeImageOptions } from './hosts/image-input.js';
export type { PreprocessSpec } from './preprocess/pipeline.js';
export type { RawImage } from './preprocess/raw-image.js';
export type { VimConfig } from './model/config.js';

/** Bytes in any of the forms the web platform hands them out (a Float32Array image is a tensor, not bytes). */
export type BinaryData = Uint8Array | ArrayBuffer | ArrayBufferView;

/**
 * A model: a path or `file:` URL (hosts with files: Node, Deno), an `http(s):` URL, the file's bytes, a
 * `Blob` / `File` or a `Response`.
 */
export type ModelSource = string | URL | BinaryData | Blob | Response;

/**
 * Decoded 8-bit pixels, row-major: greyscale, RGB or RGBA (`channels` 1, 3 or 4); without `channels`, RGBA
 * (`ImageData` is one). Alpha is dropped, as PIL's `convert('RGB')` does.
 */
export interface Pixels {
  width: number;
  height: number;
  channels?: 1 | 3 | 4;
  data: Uint8Array | Uint8ClampedArray;
}

/**
 * An image, in the forms every host takes (docs/API.md, "Images"): a path or `file:` URL (hosts with files:
 * Node, Deno), an `http(s):` URL, encoded bytes, a `Blob` / `File` or a `Response`, `Pixels` (`ImageData`
 * included), or a `Float32Array` already preprocessed for the model: [C, H, W] of `info.preprocess`
 * (`preprocess()` makes one). Browsers also take what a canvas draws (`ImageBitmap`, elements).
 */
export type ImageInput = string | URL | BinaryData | Blob | Response | Pixels | Float32Array;

/** What `onProgress` is told as a model's bytes arrive. */
export interface LoadProgress {
  /** Bytes read so far. */
  loaded: number;
  /** The model's size, when known (a file, bytes, a Blob, a response with Content-Length). */
  total?: number;
}

/**
 * Where compiled WebAssembly comes from: its bytes, a compiled module (what workerd and bundlers give for a
 * `.wasm` import), a URL or string to fetch, or a fetch Response.
 */
export type WasmSource = BinaryData | WebAssembly.Module | URL | string | Response;

/** Bounds on one download: an endless body or a silent server must not hold a process for ever. */
export interface FetchLimits {
  /** Refuse a body longer than this many bytes (default 1 GiB). */
  maxBytes?: number;
  /** Give up when a download (headers and body) takes longer than this (default 120 000 ms). */
  timeoutMs?: number;
}

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
  /**
   * Refuse a model whose WebAssembly memory (weights + the activations of one image) would exceed this many
   * bytes (default 2 GiB): a small file may declare a huge input size.
   */
  maxMemory?: number;
  /** Limits on every http(s) URL read for this classifier (model, kernels, images) and on Blob / Response bodies; defaults above. */
  fetch?: FetchLimits;
  /** Called as the model's bytes are read or downloaded. */
  onProgress?: (progress: LoadProgress) => void;
  /** Stops loading (the model's read or download, then before each later step): rejects with code ABORTED. */
  signal?: AbortSignal;
}

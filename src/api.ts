/**
 * The public API, the same on every host (docs/API.md): what every entry exports besides its
 * `loadClassifier` and its own source and image types.
 *
 *   const clf = await loadClassifier(source, options?);   // per host: src/index.ts, src/hosts/{browser,worker}.ts
 *   const top = await clf.classify(image, { topK: 5 });   // [{ label, index, score }], best first
 *   clf.info;                                              // labels, config, preprocessing, source
 *   clf.dispose();
 *
 * Host-neutral (no Node built-ins, no DOM): the hosts supply how bytes are fetched or read and how an image
 * becomes RGB pixels (src/hosts/); everything after the pixels is src/classifier.ts, one path on every host.
 */
import type { ConvertOptions } from './convert/checkpoint.js';

export { VimedgeError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { ClassifyOptions, ImageClassifier, ModelInfo, Prediction } from './classifier.js';
export type { PreprocessSpec } from './preprocess/pipeline.js';
export type { RawImage } from './preprocess/raw-image.js';
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

/**
 * The public API, the same on every host (docs/API.md): what every entry exports besides its
 * `loadClassifier`, its `decodeImage` and its own source and image types.
 *
 *   const clf = await loadClassifier(source, options?);   // per host: src/index.ts, src/hosts/{browser,worker}.ts
 *   const top = await clf.classify(image, { topK: 5 });   // [{ label, index, score }], best first
 *   clf.info;                                              // labels, config, preprocessing, source
 *   clf.dispose();
 *   const pixels = await decodeImage(image);              // the RGB pixels classify preprocesses
 *
 * Host-neutral (no Node built-ins, no DOM): the hosts supply how bytes are fetched or read and how an image
 * becomes RGB pixels (src/hosts/); everything after the pixels is src/classifier.ts, one path on every host.
 */
import type { ConvertOptions } from './convert/checkpoint.js';

export { VimedgeError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { ClassifyOptions, DecodeImageOptions, ImageClassifier, ModelInfo, Prediction } from './classifier.js';
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
  /** Node: limits on every http(s) URL read for this classifier (model, kernels, images); defaults above. */
  fetch?: FetchLimits;
}

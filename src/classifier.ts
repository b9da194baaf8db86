/**
 * The host-neutral classifier: decoded pixels in, ranked labels out. Hosts (src/hosts/) add decoding
 * and file access; everything after the pixels is this one path on every host.
 */
import type { ModelMetadata } from './model/contract.js';
import type { VimModel } from './model/vim-model.js';
import { preprocess, type RawImage } from './preprocess/pipeline.js';
import { fail } from './errors.js';

export interface Prediction {
  label: string;
  index: number;
  score: number;
}

export interface ClassifyOptions {
  topK?: number;
}

export interface Classification {
  top: Prediction[];
  logits: Float32Array;
}

/** Softmax in float64 (scores are compared across hosts to 1e-6). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const p = Float64Array.from(logits, (v) => Math.exp(v - max));
  const sum = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / sum);
}

export function topK(logits: ArrayLike<number>, labels: string[], k: number): Prediction[] {
  const p = softmax(logits);
  return Array.from(p.keys())
    .sort((a, b) => p[b] - p[a] || a - b)
    .slice(0, k)
    .map((index) => ({ label: labels[index], index, score: p[index] }));
}

export class Classifier {
  private model: VimModel | undefined;
  readonly info: ModelMetadata;

  constructor(metadata: ModelMetadata, model: VimModel) {
    this.info = metadata;
    this.model = model;
  }

  /** Runs the model on decoded pixels (any size; resized and cropped by the model's pipeline). */
  classifyPixels(image: RawImage, options: ClassifyOptions = {}): Classification {
    const model = this.model ?? fail('BAD_ARGUMENT', 'classifier has been disposed');
    const k = options.topK ?? 5;
    if (!Number.isInteger(k) || k < 1) fail('BAD_ARGUMENT', `topK must be a positive integer, got ${k}`);
    const logits = model.forward(preprocess(image, this.info.preprocess));
    // Weights and inputs are checked finite, but extreme ones can still overflow: never rank NaN scores.
    if (!logits.every(Number.isFinite)) fail('BAD_MODEL', 'the model produced non-finite logits (NaN or Inf) for this image');
    return { top: topK(logits, this.info.labels, Math.min(k, logits.length)), logits };
  }

  /** Bytes of WebAssembly memory the model holds (weights + planned activations). */
  get memoryBytes(): number {
    return (this.model ?? fail('BAD_ARGUMENT', 'classifier has been disposed')).memoryBytes;
  }

  dispose(): void {
    this.model?.dispose();
    this.model = undefined;
  }
}

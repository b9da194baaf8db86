/**
 * Model files end to end: a checkpoint (.pth / .safetensors) becomes a .vimq file, and any of the three
 * becomes a ready VimModel. A checkpoint given directly is converted in memory through the same path.
 */
import { readVimq, writeVimq, type TensorEntry } from '../formats/vimq.js';
import { readCheckpoint } from '../formats/checkpoint.js';
import { inferConfig } from './infer-config.js';
import { packWeights } from './pack.js';
import { VimModel } from './vim-model.js';
import { instantiateKernels, type Kernels } from './kernels.js';
import type { ThreadPool } from './parallel.js';
import type { VimConfig } from './config.js';
import { vimEvalSpec, type PreprocessSpec } from '../preprocess/pipeline.js';
import { fail } from '../errors.js';
import { checkModelMetadata } from './metadata-check.js';

/** How a quantized file was made (docs/FORMAT.md, docs/QUANTIZATION.md); stored in metadata.quantization. */
export interface QuantizationRecipe {
  method: string;                 // rtn | percentile | smoothquant | osplus | quarot | mambaquant
  bits: 'w8a8' | 'w4a8' | 'w6a6' | 'w4a4';
  weightBits: number;
  activationBits: number;
  /** w6a6 / w4a4: narrower codes run on the int8 kernels, for accuracy comparison only (no size or speed gain). */
  simulated: boolean;
  weights: { granularity: 'channel' | 'group64'; range: 'minmax' | 'mse' };
  activations: { granularity: 'tensor' | 'token'; dynamic: boolean; range: 'minmax' | 'percentile' | 'mse';
                 percentile?: number };
  /** The function-preserving transforms, in the order applied. */
  transforms: string[];
  calibration: { set: string; size: number; seed: number };
}

export interface ModelMetadata {
  format: 'vimq';
  config: VimConfig;
  labels: string[];
  preprocess: PreprocessSpec;
  /** Storage of the mixer's Linear weights: fp32, int8, or int4 (groups of 64) with int8 where K is too short. */
  weights: 'f32' | 'w8a8' | 'w4a8';
  /** The post-training quantization recipe; null for an unquantized file. */
  quantization: QuantizationRecipe | null;
  source: { file: string; format: 'pth' | 'safetensors' };
  tensors: TensorEntry[];
}

export interface ConvertOptions {
  labels?: string[];
  /** Class names for a model of exactly this many classes when `labels` is not given (the CLI: ImageNet's). */
  fallbackLabels?: string[];
  preprocess?: Partial<PreprocessSpec>;
  /** Overrides for what inferConfig reads from the shapes. */
  stride?: number;
  imageSize?: number;
}

const isVimq = (bytes: Uint8Array) =>
  bytes.length >= 4 && bytes[0] === 0x56 && bytes[1] === 0x49 && bytes[2] === 0x4d && bytes[3] === 0x51;

/** Checkpoint bytes -> .vimq bytes. */
export async function convertCheckpoint(bytes: Uint8Array, file: string, options: ConvertOptions = {}): Promise<Uint8Array> {
  const sd = readCheckpoint(bytes, file);
  const config = inferConfig(sd, { stride: options.stride, imageSize: options.imageSize });
  const fallback = options.fallbackLabels?.length === config.numClasses ? options.fallbackLabels : undefined;
  const labels = options.labels ?? fallback ?? Array.from({ length: config.numClasses }, (_, i) => `class_${i}`);
  if (labels.length !== config.numClasses) {
    fail('BAD_ARGUMENT', `${labels.length} labels given, the model has ${config.numClasses} classes`);
  }
  const preprocess = { ...vimEvalSpec(config.channels, config.imageSize), ...options.preprocess, channels: config.channels as 1 | 3 };
  if (preprocess.mean.length !== config.channels || preprocess.std.length !== config.channels) {
    fail('BAD_ARGUMENT', `mean and std need ${config.channels} values for a ${config.channels}-channel model`);
  }
  if (preprocess.crop !== config.imageSize) {
    fail('BAD_ARGUMENT', `crop ${preprocess.crop} differs from the model's input size ${config.imageSize}`);
  }
  const { tensors, data } = packWeights(config, sd);
  const metadata: ModelMetadata = {
    format: 'vimq', config, labels, preprocess, weights: 'f32', quantization: null,
    source: { file: file.split(/[\\/]/).pop() ?? file, format: bytes[0] === 0x50 ? 'pth' : 'safetensors' },
    tensors,
  };
  return writeVimq(metadata, data);
}

/** Kernels on shared memory and the pool of workers around them (a host's threads, e.g. node-threads.ts). */
export interface Threads {
  kernels: Kernels;
  pool: ThreadPool;
}

export interface LoadedModel {
  metadata: ModelMetadata;
  model: VimModel;
}

/** Any supported model bytes (.vimq, .pth, .safetensors) -> a model ready to run; options apply to checkpoints. */
export async function loadModel(bytes: Uint8Array, file: string, wasm: Uint8Array | WebAssembly.Module,
                                options: ConvertOptions = {}, threads?: Threads): Promise<LoadedModel> {
  const vimq = isVimq(bytes) ? bytes : await convertCheckpoint(bytes, file, options);
  const { metadata, data } = await readVimq<ModelMetadata>(vimq, file);
  checkModelMetadata(metadata, data, file);
  if (!['f32', 'w8a8', 'w4a8'].includes(metadata.weights)) {
    fail('BAD_MODEL_FILE', `${file}: weights '${metadata.weights}' not supported by this runtime`);
  }
  const model = new VimModel(metadata.config, threads?.kernels ?? await instantiateKernels(wasm), metadata.tensors, data,
    { activationBits: metadata.quantization?.activationBits, pool: threads?.pool });
  return { metadata, model };
}

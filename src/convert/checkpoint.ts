/**
 * A checkpoint (.pth / .safetensors) becomes the model in memory: its config read off the shapes, its
 * tensors in the runtime's logical forms, labels and preprocessing from the options. `vimedge convert` and
 * the build write that model as a .vimq; loading a checkpoint runs it without writing a file.
 */
import { checkpointFormat, readCheckpoint } from '../formats/checkpoint.js';
import { writeVimq } from '../formats/vimq.js';
import { inferConfig } from '../model/infer-config.js';
import { runtimeTensors, type RuntimeTensor } from '../model/contract.js';
import { vimEvalSpec, type PreprocessSpec } from '../preprocess/pipeline.js';
import type { StateDict, Tensor } from '../tensor.js';
import { fail } from '../errors.js';
import type { FloatModel } from './float-model.js';
import { packFloat } from './pack.js';

export interface ConvertOptions {
  labels?: string[];
  /** Class names for a model of exactly this many classes when `labels` is not given (the CLI: ImageNet's). */
  fallbackLabels?: string[];
  preprocess?: Partial<PreprocessSpec>;
  /** Overrides for what inferConfig reads from the shapes. */
  stride?: number;
  imageSize?: number;
}

/** One runtime tensor in its logical form, derived from the checkpoint's tensors. */
function logicalValues(t: RuntimeTensor, sd: StateDict): Float32Array {
  const get = (name: string): Tensor => sd.get(name) ?? fail('BAD_MODEL', `missing tensor ${name}`);
  if (/^layers\.\d+\.mixer\.conv1d(?:_b)?\.weight$/.test(t.name)) {
    const [K, E] = t.shape;
    const w = get(t.name).data; // [E, 1, K]
    const out = new Float32Array(K * E);
    for (let c = 0; c < E; c++) for (let k = 0; k < K; k++) out[k * E + c] = w[c * K + k];
    return out;
  }
  const a = /^(layers\.\d+\.mixer\.)A(_b)?$/.exec(t.name);
  if (a) {
    // Same rounding as the fp32 reference: exp in double precision, then one rounding to f32.
    return Float32Array.from(get(`${a[1]}A${a[2] ?? ''}_log`).data, (v) => -Math.exp(v));
  }
  return get(t.name).data;
}

/** Checkpoint bytes -> the fp32 model in memory. */
export function checkpointModel(bytes: Uint8Array, file: string, options: ConvertOptions = {}): FloatModel {
  const format = checkpointFormat(bytes, file);
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
  return {
    // Copies of the caller's arrays: the model must not change when they do.
    metadata: {
      format: 'vimq', config, labels: [...labels],
      preprocess: { ...preprocess, mean: [...preprocess.mean], std: [...preprocess.std] },
      weights: 'f32', quantization: null, source: { file: file.split(/[\\/]/).pop() ?? file, format },
    },
    tensors: new Map(runtimeTensors(config).map((t) => [t.name, logicalValues(t, sd)])),
    extras: new Set(),
  };
}

/** Checkpoint bytes -> .vimq bytes. */
export async function convertCheckpoint(bytes: Uint8Array, file: string, options: ConvertOptions = {}): Promise<Uint8Array> {
  const { metadata, data } = packFloat(checkpointModel(bytes, file, options));
  return writeVimq(metadata, data);
}

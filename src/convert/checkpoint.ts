/**
 * A checkpoint (.pth / .safetensors) becomes the model in memory: its config read off the shapes, its
 * tensors in the runtime's logical forms, labels and preprocessing from the options. `vimedge convert` and
 * the build write that model as a .vimq; loading a checkpoint runs it without writing a file.
 */
import { readCheckpointWeights } from '../formats/checkpoint.js';
import type { WeightsChoice } from '../formats/checkpoint-layout.js';
import { writeVimqPieces, type VimqSink } from '../formats/vimq.js';
import { inferConfig } from '../model/infer-config.js';
import { checkKernelLimits, runtimeTensors, type ModelSource, type ModelVariant, type RuntimeTensor } from '../model/contract.js';
import { checkFiniteTensor, checkModelStructure } from '../model/metadata-check.js';
import { vimEvalSpec, type PreprocessSpec } from '../preprocess/pipeline.js';
import type { StateDict, Tensor } from '../tensor.js';
import { checkOptions, fail } from '../errors.js';
import type { FloatModel } from './float-model.js';
import { packFloatPieces } from './pack.js';
import { describeVariant, resolveVariant } from './variant.js';

export interface ConvertOptions {
  labels?: string[];
  /** Class names for a model of exactly this many classes when `labels` is not given (the CLI: ImageNet's). */
  fallbackLabels?: string[];
  preprocess?: Partial<PreprocessSpec>;
  /** Overrides for what inferConfig reads from the shapes; a stride other than the default needs imageSize. */
  stride?: number;
  imageSize?: number;
  /** The trained weights (default) or their EMA copy (`model_ema` / `state_dict_ema` of a training checkpoint). */
  weights?: WeightsChoice;
  /** The variant flags the shapes cannot tell (docs/MODEL.md §1); what is not given is read or assumed, and recorded. */
  variant?: Partial<ModelVariant>;
}

const CONVERT_OPTION_NAMES: Record<keyof ConvertOptions, true> = {
  labels: true, fallbackLabels: true, preprocess: true, stride: true, imageSize: true, weights: true, variant: true,
};
const PREPROCESS_NAMES: Record<keyof PreprocessSpec, true> = { resize: true, crop: true, interpolation: true, mean: true, std: true, channels: true };
const VARIANT_NAMES: Record<keyof ModelVariant, true> = { classToken: true, directions: true };

/** The names of the options and of their nested objects, checked before any reading (values: when converting). */
export function checkConvertOptions(options?: ConvertOptions): void {
  const { preprocess, variant } = checkOptions(options, 'convert options', CONVERT_OPTION_NAMES);
  checkOptions(preprocess, 'convert preprocess', PREPROCESS_NAMES);
  checkOptions(variant, 'convert variant', VARIANT_NAMES);
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

/**
 * Checkpoint bytes -> the fp32 model in memory. Its tensors may be views of `bytes` (decodeFloats): keep the
 * bytes unchanged while the model is in use, and copy the model (cloneModel) before editing it.
 */
export function checkpointModel(bytes: Uint8Array, file: string, options: ConvertOptions = {}): FloatModel {
  const { stateDict: sd, format, location, strippedPrefix, trainedAs } = readCheckpointWeights(bytes, file, options.weights);
  const variant = resolveVariant(options.variant ?? {}, trainedAs);
  const config = inferConfig(sd, { stride: options.stride, imageSize: options.imageSize ?? options.preprocess?.crop });
  checkKernelLimits(config);
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
  const source: ModelSource = {
    file: file.split(/[\\/]/).pop() ?? file, format, ...(location ? { weights: location } : {}),
    ...(strippedPrefix ? { strippedPrefix } : {}), variant,
  };
  return {
    // Copies of the caller's arrays: the model must not change when they do.
    metadata: {
      format: 'vimq', config, labels: [...labels],
      preprocess: { ...preprocess, mean: [...preprocess.mean], std: [...preprocess.std] },
      weights: 'f32', quantization: null, source,
    },
    tensors: new Map(runtimeTensors(config).map((t) => [t.name, logicalValues(t, sd)])),
    extras: new Set(),
  };
}

/**
 * Checkpoint bytes -> a .vimq written through `sink` tensor by tensor, checked as the loader will check it:
 * convert never writes a file the runtime refuses. The model's tensors are views of `bytes` where the
 * checkpoint stores fp32 (decodeFloats) and each is packed only as it is written, so converting holds the
 * checkpoint and one packed tensor, not a second and third copy of the model. Returns the file's length
 * and the source record (what convert prints).
 */
export async function writeConverted(bytes: Uint8Array, file: string, options: ConvertOptions, sink: VimqSink):
    Promise<{ length: number; source: ModelSource }> {
  const { metadata, data } = packFloatPieces(checkpointModel(bytes, file, options));
  checkModelStructure(metadata, data.bytes, file);
  const entries = new Map(metadata.tensors.map((t) => [t.offset, t]));
  const checked = function* () {
    for (const piece of data.pieces) {
      checkFiniteTensor(entries.get(piece.offset)!, piece.bytes, file);
      yield piece;
    }
  };
  return { length: await writeVimqPieces(metadata, { bytes: data.bytes, pieces: checked() }, sink), source: metadata.source };
}

/** Checkpoint bytes -> .vimq bytes in memory. */
export async function convertCheckpoint(bytes: Uint8Array, file: string, options: ConvertOptions = {}): Promise<Uint8Array> {
  const chunks: { bytes: Uint8Array; position: number }[] = [];
  const { length } = await writeConverted(bytes, file, options, async (piece, position) => { chunks.push({ bytes: piece.slice(), position }); });
  const out = new Uint8Array(length);
  for (const chunk of chunks) out.set(chunk.bytes, chunk.position);
  return out;
}

/** What convert did to read the checkpoint, as (label, text) lines: printed by convert and inspect. */
export function describeSource(source: ModelSource): [string, string][] {
  return [
    ['source', `${source.file} (${source.format})${source.weights ? `, weights from ${source.weights}` : ''}`],
    ...(source.strippedPrefix
      ? [['note', `key prefix '${source.strippedPrefix}' removed (DistributedDataParallel / torch.compile wrapper)`] as [string, string]] : []),
    ...(source.variant ? [['variant', `${describeVariant(source.variant)} (${source.variant.basis})`] as [string, string]] : []),
  ];
}

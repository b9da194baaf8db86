/**
 * A .vimq's metadata, checked before anything is sized or indexed from it. The checksum only proves that the
 * file is what its writer wrote; a model downloaded from a stranger can carry any signed JSON, and every
 * number here sizes wasm memory, drives a kernel loop or indexes the labels. So: the config must be one that
 * infer-config could have produced (self-consistent, every dimension backed by stored weights), the labels
 * must name every class, the preprocessing must produce the model's input, the descriptive records (weights,
 * quantization recipe, source) must have the fields their readers print, and the fp32 weights must be finite.
 * Every reader of a model file goes through it (model-file.ts readModel).
 */
import { fail } from '../errors.js';
import type { VimConfig } from './config.js';
import { BIT_WIDTHS, bitPlan, METHOD_NAMES, type ModelMetadata, type TensorEntry } from './contract.js';
import { runStateBytes } from './run-state.js';

/** wasm32 addresses 4 GiB; a model whose weights and activations need more cannot run on any host. */
const WASM32_BYTES = 2 ** 32;
/** Far above any real input side (Vim: 224), far below where resize arithmetic loses precision. */
const MAX_SIDE = 1 << 16;

const INT_FIELDS = ['embedDim', 'depth', 'innerDim', 'dState', 'dtRank', 'dConv', 'patchSize', 'stride', 'imageSize',
  'channels', 'numClasses', 'gridSize', 'numTokens'] as const;

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkModelMetadata(metadata: ModelMetadata, data: Uint8Array, file: string): void {
  checkModelStructure(metadata, data.length, file);
  for (const t of metadata.tensors) checkFiniteTensor(t, data.subarray(t.offset, t.offset + t.bytes), file);
}

/** Everything checkModelMetadata checks but the weights' values: what a writer can check before it has them. */
export function checkModelStructure(metadata: ModelMetadata, dataBytes: number, file: string): void {
  const bad = (why: string): never => fail('BAD_MODEL_FILE', `${file}: ${why}`);
  const c = metadata.config as VimConfig | undefined;
  if (!isRecord(c)) bad('metadata has no config');
  const config = c as VimConfig;
  for (const key of INT_FIELDS) {
    if (!isPositiveInt(config[key])) bad(`config ${key} is ${JSON.stringify(config[key])}, not a positive integer`);
  }
  if (!(typeof config.normEps === 'number' && config.normEps > 0 && config.normEps < 1)) {
    bad(`config normEps is ${JSON.stringify(config.normEps)}, not a number in (0, 1)`);
  }
  checkGeometry(config, bad);
  checkBackedByData(config, metadata.tensors.length, dataBytes, bad);
  checkLabels(metadata.labels, config.numClasses, bad);
  checkPreprocess(metadata, config, bad);
  checkRecords(metadata, bad);
}

/** The relations infer-config establishes: tokens = grid² + 1, class token in the middle, input side. */
function checkGeometry(c: VimConfig, bad: (why: string) => never): void {
  const M = c.gridSize * c.gridSize;
  if (c.numTokens !== M + 1) bad(`config numTokens ${c.numTokens} is not gridSize² + 1 = ${M + 1}`);
  if (!Number.isSafeInteger(c.clsIndex) || c.clsIndex !== Math.floor(M / 2)) {
    bad(`config clsIndex ${JSON.stringify(c.clsIndex)} is not the middle of ${M} patches (${Math.floor(M / 2)})`);
  }
  if (c.stride > c.patchSize) bad(`config stride ${c.stride} exceeds patchSize ${c.patchSize} (patches would skip pixels)`);
  if (c.imageSize !== (c.gridSize - 1) * c.stride + c.patchSize) {
    bad(`config imageSize ${c.imageSize} is not (gridSize - 1) × stride + patchSize = ${(c.gridSize - 1) * c.stride + c.patchSize}`);
  }
  if (c.channels !== 1 && c.channels !== 3) bad(`config channels ${c.channels} is not 1 or 3`);
  if (c.imageSize > MAX_SIDE) bad(`config imageSize ${c.imageSize} exceeds ${MAX_SIDE}`);
}

/**
 * Every dimension appears in a stored tensor, and no tensor is stored in less than a byte per element (int4
 * panels pad to whole bytes per pair), so each of these products is at most the data section's size. This
 * bounds every loop and buffer the config drives before the tensor table is matched against it; the weights
 * and the run state the loader will plan for them are then bounded by wasm32's address space.
 */
function checkBackedByData(c: VimConfig, tensorCount: number, dataBytes: number, bad: (why: string) => never): void {
  if (c.depth > tensorCount) bad(`config depth ${c.depth} exceeds the ${tensorCount} stored tensors`);
  const { embedDim: D, innerDim: E, dState: N, dtRank: R, dConv: K, numTokens: L } = c;
  const products: [string, number][] = [
    ['pos_embed (numTokens × embedDim)', L * D],
    ['patch_embed (embedDim × channels × patchSize²)', D * c.channels * c.patchSize * c.patchSize],
    ['in_proj (2 × innerDim × embedDim)', 2 * E * D],
    ['x_proj ((dtRank + 2 × dState) × innerDim)', (R + 2 * N) * E],
    ['conv1d (dConv × innerDim)', K * E],
    ['head (numClasses × embedDim)', c.numClasses * D],
  ];
  for (const [what, elements] of products) {
    if (elements / 2 > dataBytes) bad(`config needs ${what} = ${elements} weights, more than the ${dataBytes}-byte data section holds`);
  }
  const bytes = dataBytes + runStateBytes(c);
  if (bytes > WASM32_BYTES) bad(`config needs ${(bytes / 2 ** 30).toFixed(1)} GiB of WebAssembly memory; wasm32 has 4 GiB`);
}

function checkLabels(labels: unknown, numClasses: number, bad: (why: string) => never): void {
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) bad('labels are not a list of strings');
  const list = labels as string[];
  if (list.length !== numClasses) bad(`${list.length} labels for ${numClasses} classes`);
}

function checkPreprocess(metadata: ModelMetadata, c: VimConfig, bad: (why: string) => never): void {
  const p = metadata.preprocess;
  if (typeof p !== 'object' || p === null) bad('metadata has no preprocess');
  if (p.channels !== c.channels) bad(`preprocess channels ${JSON.stringify(p.channels)} differ from the model's ${c.channels}`);
  if (p.crop !== c.imageSize) bad(`preprocess crop ${JSON.stringify(p.crop)} differs from the model's input size ${c.imageSize}`);
  if (!isPositiveInt(p.resize) || p.resize > MAX_SIDE) bad(`preprocess resize ${JSON.stringify(p.resize)} is not an integer in 1..${MAX_SIDE}`);
  if (p.interpolation !== 'bicubic' && p.interpolation !== 'bilinear') bad(`preprocess interpolation ${JSON.stringify(p.interpolation)}`);
  for (const key of ['mean', 'std'] as const) {
    const v = p[key];
    if (!Array.isArray(v) || v.length !== c.channels || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      bad(`preprocess ${key} ${JSON.stringify(v)} is not ${c.channels} finite numbers`);
    }
  }
  if (!p.std.every((s) => s >= 1e-3)) bad(`preprocess std ${JSON.stringify(p.std)} has a value below 0.001`);
}

/** The weight kind, the quantization recipe (describeRecipe and the kernels read it) and the source record. */
function checkRecords(metadata: ModelMetadata, bad: (why: string) => never): void {
  const { quantization: q, source } = metadata;
  const weights: string = metadata.weights;   // untrusted: any JSON value
  if (weights !== 'f32' && !BIT_WIDTHS.includes(weights as never)) bad(`weights ${JSON.stringify(weights)} not supported by this runtime`);
  if (!isRecord(source) || typeof source.file !== 'string' || (source.format !== 'pth' && source.format !== 'safetensors')) {
    bad(`source ${JSON.stringify(source)} is not { file, format: 'pth' | 'safetensors' }`);
  }
  if (q === null) return;
  const recipe = (why: string): never => bad(`quantization record ${why}`);
  if (!isRecord(q)) recipe(`is ${JSON.stringify(q)}, not an object or null`);
  if (!METHOD_NAMES.includes(q.method as never)) recipe(`method ${JSON.stringify(q.method)} is not one of ${METHOD_NAMES.join(', ')}`);
  if (weights === 'f32' || q.bits !== weights) recipe(`bits ${JSON.stringify(q.bits)} differ from the weights (${weights})`);
  const plan = bitPlan(weights);
  if (q.weightBits !== plan.weightBits || q.activationBits !== plan.activationBits || q.simulated !== plan.simulated) {
    recipe(`weightBits / activationBits / simulated differ from ${q.bits}'s`);
  }
  const { weights: w, activations: a, transforms, calibration: cal } = q;
  if (!isRecord(w) || typeof w.granularity !== 'string' || typeof w.range !== 'string') recipe('has no weights { granularity, range }');
  if (!isRecord(a) || typeof a.granularity !== 'string' || typeof a.range !== 'string' || typeof a.dynamic !== 'boolean') {
    recipe('has no activations { granularity, range, dynamic }');
  }
  if (!Array.isArray(transforms) || !transforms.every((t) => typeof t === 'string')) recipe('transforms are not a list of strings');
  if (!isRecord(cal) || typeof cal.set !== 'string' || !Number.isFinite(cal.size) || !Number.isFinite(cal.seed)) {
    recipe('has no calibration { set, size, seed }');
  }
}

/** NaN or Inf weights make every answer NaN; the checkpoint path refuses them in infer-config, so does this. */
export function checkFiniteTensor(t: TensorEntry, stored: Uint8Array, file: string): void {
  if (t.dtype !== 'f32') return;
  // Tensor offsets are 64-aligned in the data section; the section itself may sit anywhere in a Buffer
  // (then the tensor is copied to be read as floats).
  const values = stored.byteOffset % 4 === 0 ? new Float32Array(stored.buffer, stored.byteOffset, stored.byteLength >> 2)
    : new Float32Array(stored.slice().buffer, 0, stored.byteLength >> 2);
  const at = firstNonFinite(values);
  if (at >= 0) fail('BAD_MODEL_FILE', `${file}: tensor ${t.name} holds ${values[at]} at element ${at}`);
}

/**
 * Index of the first NaN or ±Infinity in `values`, or -1. One function called per tensor, so the engine
 * optimizes it after a few tensors (a loop inline in the caller ran ~3x slower at load); v - v is NaN exactly
 * for those values, cheaper there than Number.isFinite.
 */
function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v !== 0) return i;
  }
  return -1;
}

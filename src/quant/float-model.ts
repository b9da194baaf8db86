/**
 * The model the quantizer works on: every runtime tensor as fp32 in its logical form (Linear weights
 * [N, K] row-major instead of kn8), plus the optional tensors the transforms add. Transforms edit it in
 * float64-then-fp32 arithmetic; it can be run at any time on the fp32 kernels (calibration, equivalence
 * tests) and is finally written with its Linear weights quantized.
 */
import { readVimq } from '../formats/vimq.js';
import { layoutTensors, packKn8 } from '../model/pack.js';
import { runtimeTensors, FP32_PLAN, type Extra, type RuntimeTensor, type TensorPlan } from '../model/runtime-tensors.js';
import { VimModel } from '../model/vim-model.js';
import { instantiateKernels } from '../model/kernels.js';
import type { ModelMetadata } from '../model/model-file.js';
import { fail } from '../errors.js';

export interface FloatModel {
  /** The source file's metadata (its tensor table describes the source, not this model). */
  metadata: ModelMetadata;
  tensors: Map<string, Float32Array>;
  extras: Set<Extra>;
}

/** W [N, K] from its kn8 form Wp [K, roundUp(N, 8)] (the inverse of packKn8). */
function unpackKn8(wp: Float32Array, n: number, k: number): Float32Array {
  const np = wp.length / k;
  const w = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) w[i * k + j] = wp[j * np + i];
  return w;
}

/** An fp32 .vimq as a FloatModel; a quantized file is refused (quantizing twice compounds the error). */
export async function readFloatModel(bytes: Uint8Array, file: string): Promise<FloatModel> {
  const { metadata, data } = await readVimq<ModelMetadata>(bytes, file);
  if (metadata.weights !== 'f32' || metadata.quantization !== null) {
    fail('BAD_ARGUMENT', `${file} is already quantized (${metadata.quantization?.method ?? metadata.weights} ` +
      `${metadata.quantization?.bits ?? ''}); quantize the fp32 model instead`);
  }
  const tensors = new Map<string, Float32Array>();
  for (const t of metadata.tensors) {
    const values = new Float32Array(data.slice(t.offset, t.offset + t.bytes).buffer);
    const n = t.shape[0], count = t.shape.reduce((a, b) => a * b, 1);
    tensors.set(t.name, t.layout === 'kn8' ? unpackKn8(values, n, count / n) : values);
  }
  return { metadata, tensors, extras: new Set() };
}

export function cloneModel(m: FloatModel): FloatModel {
  return { metadata: m.metadata, tensors: new Map([...m.tensors].map(([k, v]) => [k, v.slice()])), extras: new Set(m.extras) };
}

/** The model's tensor list for a plan (fp32 Linears unless the plan quantizes them). */
export function modelPlan(m: FloatModel, weights: TensorPlan['weights'] = new Map(),
                          inputRanges: TensorPlan['inputRanges'] = 'tensor'): TensorPlan {
  return { ...FP32_PLAN, weights, inputRanges, extras: m.extras };
}

/** The stored bytes of one fp32 tensor of the model. */
export function floatBytes(m: FloatModel, t: RuntimeTensor): Uint8Array {
  const values = m.tensors.get(t.name) ?? fail('BAD_MODEL', `tensor ${t.name} is missing`);
  const stored = t.layout === 'kn8' ? packKn8(values, t.shape[0], values.length / t.shape[0]) : values;
  return new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength);
}

/** The model on the fp32 kernels, without writing a file. */
export async function instantiateFloat(m: FloatModel, wasm: Uint8Array | WebAssembly.Module): Promise<VimModel> {
  const cfg = m.metadata.config;
  const { tensors, data } = layoutTensors(runtimeTensors(cfg, modelPlan(m)), (t) => floatBytes(m, t));
  return new VimModel(cfg, await instantiateKernels(wasm), tensors, data);
}

/** A tensor of the model (fails with the name when absent). */
export function tensor(m: FloatModel, name: string): Float32Array {
  return m.tensors.get(name) ?? fail('BAD_MODEL', `tensor ${name} is missing`);
}

/** The blocks' module prefixes `layers.{i}.mixer.` and the two scan directions' suffixes. */
export const mixerPrefix = (i: number): string => `layers.${i}.mixer.`;
export const DIRECTIONS = ['', '_b'] as const;

/** max_j |W[j, k]| per input column k of W [n, K]. */
export function columnAbsMax(w: Float32Array, n: number, k: number): Float64Array {
  const out = new Float64Array(k);
  for (let j = 0; j < n; j++) for (let c = 0; c < k; c++) out[c] = Math.max(out[c], Math.abs(w[j * k + c]));
  return out;
}

/** W[j, k] *= s[k] for W [n, K] (a per-input-channel factor folded into a Linear). */
export function scaleColumns(w: Float32Array, n: number, k: number, s: ArrayLike<number>): void {
  for (let j = 0; j < n; j++) for (let c = 0; c < k; c++) w[j * k + c] *= s[c];
}

/** W[j, :] *= s[j] for the first s.length rows of W [n, K]. */
export function scaleRows(w: Float32Array, k: number, s: ArrayLike<number>): void {
  for (let j = 0; j < s.length; j++) for (let c = 0; c < k; c++) w[j * k + c] *= s[j];
}

/** The tensor, created as zeros when absent, and the extra that carries it recorded. */
export function ensureExtra(m: FloatModel, extra: Extra, name: string, size: number): Float32Array {
  m.extras.add(extra);
  let t = m.tensors.get(name);
  if (!t) m.tensors.set(name, t = new Float32Array(size));
  return t;
}

/**
 * The model in memory, fp32: every runtime tensor (contract.ts) in its logical form (Linear weights [N, K]
 * row-major rather than kn8), plus the optional tensors the quantization transforms add. A checkpoint
 * becomes one (checkpoint.ts), an fp32 .vimq unpacks into one (pack.ts); the transforms edit it in
 * float64-then-fp32 arithmetic, and every writer starts from it.
 */
import { FP32_PLAN, type Extra, type ModelDescription, type TensorPlan } from '../model/contract.js';
import { fail } from '../errors.js';

export interface FloatModel {
  metadata: ModelDescription;
  tensors: Map<string, Float32Array>;
  extras: Set<Extra>;
}

export function cloneModel(m: FloatModel): FloatModel {
  return { metadata: m.metadata, tensors: new Map([...m.tensors].map(([k, v]) => [k, v.slice()])), extras: new Set(m.extras) };
}

/** A tensor of the model (fails with the name when absent). */
export function tensor(m: FloatModel, name: string): Float32Array {
  return m.tensors.get(name) ?? fail('BAD_MODEL', `tensor ${name} is missing`);
}

/** The tensor, created as zeros when absent, and the extra that carries it recorded. */
export function ensureExtra(m: FloatModel, extra: Extra, name: string, size: number): Float32Array {
  m.extras.add(extra);
  let t = m.tensors.get(name);
  if (!t) m.tensors.set(name, t = new Float32Array(size));
  return t;
}

/** The model's tensor plan (fp32 Linears unless `weights` quantizes them). */
export function modelPlan(m: FloatModel, weights: TensorPlan['weights'] = new Map(),
                          inputRanges: TensorPlan['inputRanges'] = 'tensor'): TensorPlan {
  return { ...FP32_PLAN, weights, inputRanges, extras: m.extras };
}

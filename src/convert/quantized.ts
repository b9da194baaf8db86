/**
 * The quantized writer (docs/FORMAT.md, layouts q8 and q4g64): the transformed fp32 model with its
 * quantized Linears packed for the integer kernels, their scales, code sums and input quantizers beside
 * them, and the recipe in metadata.quantization.
 */
import { writeVimq } from '../formats/vimq.js';
import { runtimeTensors, type QuantizationRecipe, type TensorPlan, type WeightLayout } from '../model/contract.js';
import { modelPlan, type FloatModel } from './float-model.js';
import { floatBytes, layoutTensors, packQ4, packQ8 } from './pack.js';

/** A Linear weight W [N, K] as symmetric integer codes with one scale per row and group of `group` inputs. */
export interface QuantizedWeight {
  n: number;
  k: number;
  group: number;        // inputs per scale: k for per-channel, 64 for q4g64
  codes: Int8Array;     // [N, K] integer codes
  scale: Float32Array;  // [N, G]
  sum: Int32Array;      // [N, G] code sums per group (the GEMM's zero-point correction)
}

export interface QuantizedLinear {
  layout: Exclude<WeightLayout, 'kn8'>;
  weight: QuantizedWeight;
}

/** The stored input quantizer of a Linear: one scale / zero point, or one per token. */
export interface InputQuantizer {
  scale: Float32Array;
  zero: Int32Array;
}

const bytesOf = (a: Float32Array | Int32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The .vimq bytes: m's fp32 tensors as they are, the Linears of `linears` quantized; inputs absent when dynamic. */
export async function writeQuantized(m: FloatModel, recipe: QuantizationRecipe, linears: Map<string, QuantizedLinear>,
                                     inputs: Map<string, InputQuantizer>, inputRanges: TensorPlan['inputRanges']): Promise<Uint8Array> {
  const plan = modelPlan(m, new Map([...linears].map(([name, l]) => [name, l.layout])), inputRanges);
  const { tensors, data } = layoutTensors(runtimeTensors(m.metadata.config, plan), (t) => {
    const at = t.name.lastIndexOf('.');
    const linear = t.name.slice(0, at), field = t.name.slice(at + 1);
    const w = linears.get(linear)?.weight;
    if (!w) return floatBytes(m, t);
    switch (field) {
      case 'weight': return t.layout === 'q8' ? packQ8(w.codes, w.n, w.k) : packQ4(w.codes, w.n, w.k);
      case 'weight_scale': return bytesOf(w.scale);
      case 'weight_sum': return bytesOf(w.sum);
      case 'input_scale': return bytesOf(inputs.get(linear)!.scale);
      case 'input_zero': return bytesOf(inputs.get(linear)!.zero);
      default: return floatBytes(m, t);
    }
  });
  return writeVimq({ ...m.metadata, weights: recipe.bits, quantization: recipe, tensors }, data);
}

/**
 * The quantization pipeline, fp32 model in, quantized .vimq out (docs/QUANTIZATION.md):
 *   1. the method's preparing transforms, then (if it needs them) a statistics pass on the fp32 kernels;
 *   2. the method's function-preserving transforms (the transformed fp32 model computes the same function);
 *   3. a range pass on the transformed model: the input of every quantized Linear;
 *   4. weights quantized (int8 per channel, or int4 per group of 64) and packed for the integer kernels,
 *      activation quantizers stored per site, the recipe in metadata.quantization.
 */
import { writeVimq } from '../formats/vimq.js';
import { layoutTensors } from '../model/pack.js';
import { Q4_GROUP, quantizableLinears, runtimeTensors, type QuantizableLinear, type TensorPlan, type WeightLayout }
  from '../model/runtime-tensors.js';
import type { ModelMetadata, QuantizationRecipe } from '../model/model-file.js';
import { calibrate, type Calibration } from './calibrate.js';
import type { CalibrationImages } from './calibration-source.js';
import { cloneModel, floatBytes, instantiateFloat, modelPlan, tensor, type FloatModel } from './float-model.js';
import { methodByName, type ActivationRange } from './methods.js';
import { siteQuantizers } from './activation-ranges.js';
import { packQ4, packQ8, quantizeWeight, type QuantizedWeight, type WeightRange } from './weights.js';
import { seededRandom } from './random.js';
import { BIT_WIDTHS, type BitWidth } from './recipe.js';
import { fail } from '../errors.js';

export { BIT_WIDTHS, type BitWidth } from './recipe.js';

export interface QuantizeOptions {
  method: string;
  bits: string;
  seed: number;
  /** Activation quantizers: static per tensor (default), static per token (PTS), or dynamic per token. */
  granularity?: 'tensor' | 'token' | 'dynamic';
  /** Overrides the method's range estimator. */
  range?: ActivationRange;
  symmetricActivations?: boolean;
  /** Weight clipping: max |w| (default for 8 and 6 bits) or the Lp search (default for 4 bits). */
  weightRange?: WeightRange;
}

export interface QuantizeResult {
  file: Uint8Array;
  recipe: QuantizationRecipe;
  /** The transformed, unquantized model (what the equivalence tests run). */
  transformed: FloatModel;
}

interface BitPlan { weightBits: number; activationBits: number; simulated: boolean; int4: boolean }

function bitPlan(bits: string): BitPlan {
  switch (bits) {
    case 'w8a8': return { weightBits: 8, activationBits: 8, simulated: false, int4: false };
    case 'w4a8': return { weightBits: 4, activationBits: 8, simulated: false, int4: true };
    case 'w6a6': return { weightBits: 6, activationBits: 6, simulated: true, int4: false };
    case 'w4a4': return { weightBits: 4, activationBits: 4, simulated: true, int4: true };
    default: return fail('BAD_ARGUMENT', `unknown bit width '${bits}' (${BIT_WIDTHS.join(', ')})`);
  }
}

/**
 * Storage of one Linear: int4 groups for 4-bit weights, except dt_proj, whose K = R (12 for Vim-Ti) is too
 * short for groups of 64 and which stays int8 (0.6% of the weights).
 */
function layoutOf(l: QuantizableLinear, b: BitPlan): { layout: WeightLayout; bits: number } {
  if (b.int4 && !/\.dt_proj(_b)?$/.test(l.name)) return { layout: 'q4g64', bits: b.weightBits };
  return { layout: 'q8', bits: b.int4 ? 8 : b.weightBits };
}

const bytesOf = (a: Float32Array | Int32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export interface Transformed {
  model: FloatModel;
  /** The transforms applied, in order. */
  transforms: string[];
}

/** Steps 1-2: the method's transforms on a copy of the source, with the statistics pass they need. */
export async function transformModel(source: FloatModel, images: CalibrationImages, wasm: Uint8Array | WebAssembly.Module,
                                     options: { method: string; seed: number; activationBits: number }): Promise<Transformed> {
  const method = methodByName(options.method);
  const m = cloneModel(source);
  const transforms = method.prepare?.(m) ?? [];
  let stats: Calibration | undefined;
  if (method.needs) {
    stats = await calibrate(await instantiateFloat(m, wasm), images, (site) => method.needs!(site, m.metadata.config),
      { seed: options.seed, label: 'statistics' });
  }
  transforms.push(...method.transform(m, stats, { random: seededRandom(options.seed), activationBits: options.activationBits }));
  return { model: m, transforms };
}

/** The stored input quantizer of a Linear: one scale / zero point, or one per token. */
interface InputQuantizer { scale: Float32Array; zero: Int32Array }

/** Step 4: the tensor bytes of the quantized file (fp32 tensors as they are, quantized Linears packed). */
function quantizedTensors(m: FloatModel, weights: Map<string, { layout: WeightLayout; q: QuantizedWeight }>,
                          inputs: Map<string, InputQuantizer>, inputRanges: TensorPlan['inputRanges']) {
  const plan = modelPlan(m, new Map([...weights].map(([name, w]) => [name, w.layout])), inputRanges);
  return layoutTensors(runtimeTensors(m.metadata.config, plan), (t) => {
    const at = t.name.lastIndexOf('.');
    const linear = t.name.slice(0, at), field = t.name.slice(at + 1);
    const w = weights.get(linear)?.q;
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
}

export async function quantizeModel(source: FloatModel, images: CalibrationImages, wasm: Uint8Array | WebAssembly.Module,
                                    options: QuantizeOptions): Promise<QuantizeResult> {
  const method = methodByName(options.method);
  const b = bitPlan(options.bits);
  const granularity = options.granularity ?? 'tensor';
  // Dynamic ranges are each row's own min / max at run time: no estimator applies.
  const range = granularity === 'dynamic' ? 'minmax' : options.range ?? method.range;
  const weightRange = options.weightRange ?? (b.weightBits <= 4 ? 'mse' : 'minmax');
  const { model: m, transforms } = await transformModel(source, images, wasm,
    { method: options.method, seed: options.seed, activationBits: b.activationBits });
  const linears = quantizableLinears(source.metadata.config);

  // Step 3: the ranges of every Linear's input, on the transformed model.
  const inputs = new Map<string, InputQuantizer>();
  const rangeOptions = {
    range, percentile: method.percentile ?? 0.99999, granularity: granularity === 'token' ? 'token' as const : 'tensor' as const,
    symmetric: options.symmetricActivations ?? false, bits: b.activationBits,
  };
  if (granularity !== 'dynamic') {
    const names = new Set(linears.map((l) => l.name));
    const ranges = await calibrate(await instantiateFloat(m, wasm), images,
      (site) => (names.has(site) ? { histogram: range !== 'minmax' } : undefined), { seed: options.seed, label: 'ranges' });
    for (const l of linears) {
      const q = siteQuantizers(ranges.get(l.name) ?? fail('BAD_ARGUMENT', `no ranges for ${l.name}`), rangeOptions);
      inputs.set(l.name, { scale: Float32Array.from(q, (a) => a.scale), zero: Int32Array.from(q, (a) => a.zero) });
    }
  }

  const weights = new Map(linears.map((l) => {
    const { layout, bits } = layoutOf(l, b);
    const q = quantizeWeight(tensor(m, `${l.name}.weight`), l.n, l.k, bits, layout === 'q4g64' ? Q4_GROUP : l.k, weightRange);
    return [l.name, { layout, q }];
  }));
  const { tensors, data } = quantizedTensors(m, weights, inputs, granularity);

  const recipe: QuantizationRecipe = {
    method: options.method,
    bits: options.bits as BitWidth,
    weightBits: b.weightBits,
    activationBits: b.activationBits,
    simulated: b.simulated,
    weights: { granularity: b.int4 ? 'group64' : 'channel', range: weightRange },
    activations: {
      granularity: granularity === 'token' ? 'token' : 'tensor', dynamic: granularity === 'dynamic', range,
      ...(range === 'percentile' ? { percentile: rangeOptions.percentile } : {}),
    },
    transforms,
    calibration: { set: images.name, size: images.count, seed: options.seed },
  };
  const metadata: ModelMetadata = { ...source.metadata, weights: b.int4 ? 'w4a8' : 'w8a8', quantization: recipe, tensors };
  return { file: await writeVimq(metadata, data), recipe, transformed: m };
}

/**
 * The quantization pipeline, fp32 model in, quantized .vimq out (docs/QUANTIZATION.md):
 *   1. the method's preparing transforms, then (if it needs them) a statistics pass on the fp32 kernels;
 *   2. the method's function-preserving transforms (the transformed fp32 model computes the same function);
 *   3. a range pass on the transformed model: the input of every quantized Linear;
 *   4. weights quantized (int8 per channel, or int4 per group of 64) and packed for the integer kernels,
 *      activation quantizers stored per site, the recipe in metadata.quantization.
 */
import { bitPlan, Q4_GROUP, quantizableLinears, type BitPlan, type BitWidth, type QuantizableLinear,
  type QuantizationRecipe } from '../model/contract.js';
import { instantiateFloat, type Threads } from '../model/model-file.js';
import { cloneModel, tensor, type FloatModel } from '../convert/float-model.js';
import { writeQuantized, type InputQuantizer, type QuantizedLinear } from '../convert/quantized.js';
import { calibrate, type Calibration } from './calibrate.js';
import type { CalibrationImages } from './calibration-source.js';
import { methodByName, type ActivationRange } from './methods.js';
import { siteQuantizers } from './activation-ranges.js';
import { quantizeWeight, type WeightRange } from './weights.js';
import { seededRandom } from './random.js';
import { fail } from '../errors.js';

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
  /** Threads the calibration passes split each image over (a host's, e.g. createNodeThreads); same result. */
  threads?: Threads;
}

export interface QuantizeResult {
  file: Uint8Array;
  recipe: QuantizationRecipe;
  /** The transformed, unquantized model (what the equivalence tests run). */
  transformed: FloatModel;
}

/**
 * Storage of one Linear: int4 groups for 4-bit weights, except dt_proj, whose K = R (12 for Vim-Ti) is too
 * short for groups of 64 and which stays int8 (0.6% of the weights).
 */
function layoutOf(l: QuantizableLinear, b: BitPlan): { layout: QuantizedLinear['layout']; bits: number } {
  if (b.int4 && !/\.dt_proj(_b)?$/.test(l.name)) return { layout: 'q4g64', bits: b.weightBits };
  return { layout: 'q8', bits: b.int4 ? 8 : b.weightBits };
}

export interface Transformed {
  model: FloatModel;
  /** The transforms applied, in order. */
  transforms: string[];
}

/** Steps 1-2: the method's transforms on a copy of the source, with the statistics pass they need. */
export async function transformModel(source: FloatModel, images: CalibrationImages, wasm: Uint8Array | WebAssembly.Module,
                                     options: { method: string; seed: number; activationBits: number; threads?: Threads }): Promise<Transformed> {
  const method = methodByName(options.method);
  const m = cloneModel(source);
  const transforms = method.prepare?.(m) ?? [];
  let stats: Calibration | undefined;
  if (method.needs) {
    stats = await calibrate(await instantiateFloat(m, wasm, options.threads), images, (site) => method.needs!(site, m.metadata.config),
      { seed: options.seed, label: 'statistics' });
  }
  transforms.push(...method.transform(m, stats, { random: seededRandom(options.seed), activationBits: options.activationBits }));
  return { model: m, transforms };
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
    { method: options.method, seed: options.seed, activationBits: b.activationBits, threads: options.threads });
  const linears = quantizableLinears(source.metadata.config);

  // Step 3: the ranges of every Linear's input, on the transformed model.
  const inputs = new Map<string, InputQuantizer>();
  const rangeOptions = {
    range, percentile: method.percentile ?? 0.99999, granularity: granularity === 'token' ? 'token' as const : 'tensor' as const,
    symmetric: options.symmetricActivations ?? false, bits: b.activationBits,
  };
  if (granularity !== 'dynamic') {
    const names = new Set(linears.map((l) => l.name));
    const ranges = await calibrate(await instantiateFloat(m, wasm, options.threads), images,
      (site) => (names.has(site) ? { histogram: range !== 'minmax' } : undefined), { seed: options.seed, label: 'ranges' });
    for (const l of linears) {
      const q = siteQuantizers(ranges.get(l.name) ?? fail('BAD_ARGUMENT', `no ranges for ${l.name}`), rangeOptions);
      inputs.set(l.name, { scale: Float32Array.from(q, (a) => a.scale), zero: Int32Array.from(q, (a) => a.zero) });
    }
  }

  const quantized = new Map(linears.map((l): [string, QuantizedLinear] => {
    const { layout, bits } = layoutOf(l, b);
    const weight = quantizeWeight(tensor(m, `${l.name}.weight`), l.n, l.k, bits, layout === 'q4g64' ? Q4_GROUP : l.k, weightRange);
    return [l.name, { layout, weight }];
  }));

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
  return { file: await writeQuantized(m, recipe, quantized, inputs, granularity), recipe, transformed: m };
}

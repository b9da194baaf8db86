/**
 * A quantization recipe (metadata.quantization): the method and bit-width names, and the recipe in one line
 * for `vimedge inspect` and reports. Free of the quantizer's code, so the CLI lists the names at start-up.
 */
import type { QuantizationRecipe } from '../model/model-file.js';

export const METHOD_NAMES = ['rtn', 'percentile', 'smoothquant', 'osplus', 'quarot', 'mambaquant'] as const;
export type MethodName = typeof METHOD_NAMES[number];

export const BIT_WIDTHS = ['w8a8', 'w4a8', 'w6a6', 'w4a4'] as const;
export type BitWidth = typeof BIT_WIDTHS[number];

export function describeRecipe(r: QuantizationRecipe | null): string {
  if (!r) return 'none';
  const a = r.activations;
  const ranges = a.dynamic ? 'dynamic per-token ranges'
    : `${a.range}${a.percentile ? ` ${a.percentile}` : ''} ranges per ${a.granularity}`;
  return `${r.method} ${r.bits}${r.simulated ? ' (simulated)' : ''}: weights ${r.weightBits}-bit per ${r.weights.granularity === 'group64' ? 'group of 64' : 'channel'} ` +
    `(${r.weights.range}), activations ${r.activationBits}-bit with ${ranges}; ` +
    `transforms [${r.transforms.join(', ') || 'none'}]; calibrated on ${r.calibration.size} images of ${r.calibration.set}, seed ${r.calibration.seed}`;
}

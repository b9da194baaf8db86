/** A quantization recipe (metadata.quantization) in one line, for `vimedge inspect` and reports. */
import type { QuantizationRecipe } from '../model/contract.js';

export function describeRecipe(r: QuantizationRecipe | null): string {
  if (!r) return 'none';
  const a = r.activations;
  const ranges = a.dynamic ? 'dynamic per-token ranges'
    : `${a.range}${a.percentile ? ` ${a.percentile}` : ''} ranges per ${a.granularity}`;
  return `${r.method} ${r.bits}${r.simulated ? ' (simulated)' : ''}: weights ${r.weightBits}-bit per ${r.weights.granularity === 'group64' ? 'group of 64' : 'channel'} ` +
    `(${r.weights.range}), activations ${r.activationBits}-bit with ${ranges}; ` +
    `transforms [${r.transforms.join(', ') || 'none'}]; calibrated on ${r.calibration.size} images of ${r.calibration.set}, seed ${r.calibration.seed}`;
}

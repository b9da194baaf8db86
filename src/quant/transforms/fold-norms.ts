/**
 * RMSNorm weights folded into the next Linear (QUANT-METHODS.md §6, a prerequisite of R1):
 * (n ⊙ γ)·Wᵀ = n·(W·diag(γ))ᵀ, so in_proj takes γ in its columns and the norm keeps γ = 1 (likewise
 * norm_f into head). RMSNorm without γ commutes with an orthogonal rotation of the residual stream.
 */
import { mixerPrefix } from '../../model/contract.js';
import { tensor, type FloatModel } from '../../convert/float-model.js';
import { scaleColumns } from '../linalg.js';
import { fail } from '../../errors.js';

export function foldNorms(m: FloatModel): void {
  const { embedDim: D, innerDim: E, depth, numClasses } = m.metadata.config;
  if (m.extras.has('in_proj.input_shift')) fail('BAD_ARGUMENT', 'fold the norms before the OS+ shift, not after');
  const fold = (norm: string, linear: string, n: number) => {
    const gamma = tensor(m, norm);
    scaleColumns(tensor(m, linear), n, D, gamma);
    gamma.fill(1);
  };
  for (let i = 0; i < depth; i++) fold(`layers.${i}.norm.weight`, `${mixerPrefix(i)}in_proj.weight`, 2 * E);
  fold('norm_f.weight', 'head.weight', numClasses);
}

/**
 * Orthogonal rotations folded into the weights (QuaRot and MambaQuant; QUANT-METHODS.md §6, §9.1):
 * (X·Q)·(W·Q)ᵀ = X·Wᵀ for orthogonal Q.
 * - R1, the residual stream (one Q [D, D] for the whole model; needs the norms folded): every producer of
 *   the stream writes x·Q (patch embedding rows, cls token, pos_embed, out_proj rows: W ← Qᵀ·W) and every
 *   reader takes it (in_proj and head columns: W ← W·Q). RMSNorm without γ commutes with Q.
 * - R5, the dt bottleneck of one block and direction (Q [R, R]): x_proj's dt rows W ← Qᵀ·W (bias b ← b·Q),
 *   dt_proj W ← W·Q.
 * - R2, the out_proj input (online): W_out ← W_out·Q with Q = diag(signs)·H_E/√E, and the runtime applies
 *   g ← (g ⊙ signs)·H_E/√E before quantizing (`out_proj.input_signs`, assembly/hadamard.ts).
 * Q is either a random-sign Hadamard (QuaRot) or the KLT-enhanced K·diag(signs)·H/√n (MambaQuant), whose
 * rotated channels all have the same variance: cov(X·K·H) = Hᵀ·Λ·H has diagonal mean(λ).
 */
import { mixerPrefix } from '../../model/contract.js';
import { ensureExtra, tensor, type FloatModel } from '../../convert/float-model.js';
import { rotateRowsHadamard, rotationMatrix } from '../hadamard.js';
import { matmul, symmetricEigen, transpose } from '../linalg.js';
import { fail } from '../../errors.js';

/** W [n, k] ← W·Q (Q [k, k]): the Linear reads rotated inputs. */
function rotateInputs(w: Float32Array, n: number, k: number, q: Float64Array): void {
  w.set(matmul(w, q, n, k, k));
}

/** The first q-size rows of W [·, k] ← Qᵀ·rows: the Linear writes rotated outputs. */
function rotateOutputs(w: Float32Array, k: number, q: Float64Array, size: number): void {
  w.set(matmul(transpose(q, size, size), w.subarray(0, size * k), size, size, k));
}

/** Row vectors [rows, size] ← rows·Q. */
function rotateRows(v: Float32Array, size: number, q: Float64Array): void {
  v.set(matmul(v, q, v.length / size, size, size));
}

/** The KLT-enhanced rotation K·diag(signs)·H/√n from a covariance [n, n]. */
export function kltRotation(covariance: Float64Array, n: number, signs: Float64Array): Float64Array {
  return rotationMatrix(n, signs, symmetricEigen(covariance, n).vectors);
}

/** R1 on the residual stream; the RMSNorm weights must already be folded (γ = 1). */
export function rotateResidual(m: FloatModel, q: Float64Array): void {
  const c = m.metadata.config, D = c.embedDim, E = c.innerDim;
  const unit = (name: string) => tensor(m, name).every((v) => v === 1);
  if (!unit('norm_f.weight') || !Array.from({ length: c.depth }, (_, i) => unit(`layers.${i}.norm.weight`)).every(Boolean)) {
    fail('BAD_ARGUMENT', 'R1 needs the RMSNorm weights folded into in_proj and head first');
  }
  if (m.extras.has('in_proj.input_shift')) fail('BAD_ARGUMENT', 'R1 cannot rotate an OS+ in_proj shift');
  const patchLen = c.channels * c.patchSize * c.patchSize;
  rotateOutputs(tensor(m, 'patch_embed.proj.weight'), patchLen, q, D);
  for (const name of ['patch_embed.proj.bias', 'cls_token', 'pos_embed']) rotateRows(tensor(m, name), D, q);
  for (let i = 0; i < c.depth; i++) {
    const p = mixerPrefix(i);
    rotateInputs(tensor(m, `${p}in_proj.weight`), 2 * E, D, q);
    rotateOutputs(tensor(m, `${p}out_proj.weight`), E, q, D);
  }
  rotateInputs(tensor(m, 'head.weight'), c.numClasses, D, q);
}

/** R5 on the dt bottleneck of block `i`, direction `dir` ('' or '_b'). */
export function rotateDt(m: FloatModel, i: number, dir: string, q: Float64Array): void {
  const { innerDim: E, dtRank: R } = m.metadata.config;
  const p = mixerPrefix(i);
  rotateOutputs(tensor(m, `${p}x_proj${dir}.weight`), E, q, R);
  const bias = m.tensors.get(`${p}x_proj${dir}.bias`);
  if (bias) rotateRows(bias.subarray(0, R), R, q);
  rotateInputs(tensor(m, `${p}dt_proj${dir}.weight`), E, R, q);
}

/** R2: online Hadamard with these signs at the out_proj input of block `i`. */
export function rotateOutInput(m: FloatModel, i: number, signs: Float64Array): void {
  const { embedDim: D, innerDim: E } = m.metadata.config;
  const p = mixerPrefix(i);
  rotateRowsHadamard(tensor(m, `${p}out_proj.weight`), D, E, signs);
  ensureExtra(m, 'out_proj.input_signs', `${p}out_proj.input_signs`, E).set(signs);
}

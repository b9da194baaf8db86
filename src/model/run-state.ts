/**
 * The run state: every activation buffer of one forward pass (docs/MODEL.md §2), planned once as byte offsets
 * into the kernels' memory so that no image allocates. Shapes in docs/MODEL.md §1 notation. The loader sizes wasm memory
 * from this plan and the metadata check bounds it against wasm32, so both read the same arithmetic.
 */
import type { VimConfig } from './config.js';
import { alignUp, BLOB_ALIGN, q4ScratchBytes, Q4_GROUP } from './contract.js';

/** Rows of a buffer: byte offset of row 0 and row stride in floats. */
export interface Rows {
  at: number;
  ld: number;
}

/**
 * A Linear's input that no kernel reads after that Linear, so the Linear may overwrite it with its input
 * transforms (OS+ shift, online Hadamard). Only planRunState makes these, for the two buffers it plans that
 * way: the RMSNorm output (read by in_proj alone) and the gated branch sum (read by out_proj alone).
 */
export interface OwnedInput extends Rows {
  readonly ownedByItsLinear: true;
}

/**
 * Scratch of a Linear on the integer kernels, per row: the call for rows [r0, r1) uses the slots of rows
 * r0.. alone, so threads on different rows never share scratch, whichever Linear each runs (x_proj and
 * dt_proj, of different K, run at once on different rows of the same scratch).
 */
export interface LinearScratch {
  kp: number;        // bytes of a row's slot in q: the widest K of the model (D, E, R) padded to 64
  q: number;         // int8 [L, kp] quantized input, a row's K padded to 64 at the start of its slot
  rowScale: number;  // [L] f32 scale of each row of q
  rowZero: number;   // [L] i32 zero point of each row of q
  rotation: number;  // [L, 48] floats: hadamard_rows_f32's scratch for the call starting at that row
}

/** Floats of hadamard_rows_f32's scratch (12 segments of 4). */
export const ROTATION_SCRATCH = 48;

/** Buffers of one direction of the mixer's branch (§2.3): one set per direction, so both can run at once. */
export interface BranchBuffers {
  u: number;        // [L, E] conv + SiLU output
  xd: number;       // [L, R + 2N] x_proj output: dt | B | C
  delta: number;    // [L, E] softplus(dt_proj(dt))
  scratch: LinearScratch;   // x_proj's and dt_proj's; the forward direction's also serves in_proj and out_proj
}

export interface RunState {
  img: number;        // [C, H, W] normalised input
  patches: number;    // [M, C*P*P] im2col rows
  embed: number;      // [M, D] patch embeddings
  resid: number;      // [L, D] residual stream (fp32)
  normed: OwnedInput; // [L, D] RMSNorm output: in_proj's input
  h: number;          // [L, D] mixer output
  xz: number;         // [L, 2E] in_proj output: x | z
  yf: OwnedInput;     // [L, E] forward branch output, then the gated combination: out_proj's input
  yb: number;         // [L, E] backward branch output
  cls: number;        // [D] final-normed class token
  logits: number;     // [numClasses]
  branches: [BranchBuffers, BranchBuffers];   // forward, backward
  gemmScratch: number;       // gemm_qs4's scratch of each thread: thread i's at gemmScratch + i * gemmScratchBytes
  gemmScratchBytes: number;
  end: number;
}

/** The run state of a model with config `cfg` from byte `start`, for `threads` threads. */
export function planRunState(cfg: VimConfig, start: number, threads = 1): RunState {
  const { embedDim: D, innerDim: E, dState: N, dtRank: R, numTokens: L } = cfg;
  const M = cfg.gridSize * cfg.gridSize;
  let at = start;
  const take = (floats: number) => {
    const here = at;
    at = alignUp(at + floats * 4, BLOB_ALIGN);
    return here;
  };
  const owned = (floats: number, ld: number): OwnedInput => ({ at: take(floats), ld, ownedByItsLinear: true });
  const img = take(cfg.channels * cfg.imageSize * cfg.imageSize), patches = take(M * cfg.channels * cfg.patchSize * cfg.patchSize);
  const embed = take(M * D), resid = take(L * D), normed = owned(L * D, D), h = take(L * D), xz = take(L * 2 * E);
  const yf = owned(L * E, E), yb = take(L * E), cls = take(D), logits = take(cfg.numClasses);
  const kp = alignUp(Math.max(D, E, R), Q4_GROUP);
  const branch = (): BranchBuffers => {
    const u = take(L * E), xd = take(L * (R + 2 * N)), delta = take(L * E);
    const scratch = { kp, q: take(L * kp / 4), rowScale: take(L), rowZero: take(L), rotation: take(L * ROTATION_SCRATCH) };
    return { u, xd, delta, scratch };
  };
  const branches: [BranchBuffers, BranchBuffers] = [branch(), branch()];
  const gemmScratchBytes = alignUp(q4ScratchBytes(L, Math.max(D, E, R)), BLOB_ALIGN);
  const gemmScratch = take(threads * gemmScratchBytes / 4);
  return { img, patches, embed, resid, normed, h, xz, yf, yb, cls, logits, branches, gemmScratch, gemmScratchBytes, end: at };
}

/** Bytes of the run state of a model with config `cfg` on `threads` threads. */
export function runStateBytes(cfg: VimConfig, threads = 1): number {
  return planRunState(cfg, 0, threads).end;
}

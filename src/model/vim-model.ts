/**
 * A loaded Vim classifier: weights copied into the kernels' memory once, every activation buffer planned
 * once (no allocation per image), and forward() walking spec §2 step by step. The Linear layers of the mixer
 * run on whatever their weight's stored layout says: gemm_f32 for 'kn8', or quantize_s8 + gemm_s8 / gemm_s4
 * for the int8 / int4 layouts of a quantized file (docs/FORMAT.md). With a ThreadPool (parallel.ts), each
 * layer is three parallel steps: norm + in_proj split by rows, the two scan branches side by side, gate +
 * out_proj split by rows.
 */
import type { VimConfig } from './config.js';
import { ensureMemory, type Kernels } from './kernels.js';
import { alignUp, BLOB_ALIGN, checkTensorsMatch, isHadamardSize, planOf, quantizableLinears, Q4_GROUP,
  type QuantizableLinear, type TensorEntry, type WeightLayout } from './contract.js';
import { fail } from '../errors.js';
import { recorder, rowRange, type KernelCall, type ThreadPool } from './parallel.js';

/** Scratch of one mixer branch (two sets, so that the branches can run at the same time). */
interface BranchState {
  u: number;        // [L, E] conv + SiLU output
  xd: number;       // [L, R + 2N] x_proj output: dt | B | C
  delta: number;    // [L, E]
  q: number;        // int8 [L, kp] quantized input of the Linear being run (kp: its K padded to 64)
  rowScale: number; // [L] f32 scale of each row of q
  rowZero: number;  // [L] i32 zero point of each row of q
  rotation: number; // 48 floats of hadamard_rows_f32's scratch
  groupSums: number; // i32 [L, kp / 64]: gemm_s4's activation sums per group (relaxed-SIMD build)
}

/** Byte offsets of the activation buffers (the run state), shapes in spec notation. */
interface RunState {
  img: number;      // [C, H, W] normalised input
  patches: number;  // [M, C*P*P] im2col rows
  embed: number;    // [M, D] patch embeddings
  resid: number;    // [L, D] residual stream (fp32)
  normed: number;   // [L, D] RMSNorm output
  h: number;        // [L, D] mixer output
  xz: number;       // [L, 2E] in_proj output: x | z
  yf: number;       // [L, E] forward branch output, then the gated combination
  yb: number;       // [L, E] backward branch output
  cls: number;      // [D] final-normed class token
  logits: number;   // [numClasses]
  branches: [BranchState, BranchState];   // [0] also serves in_proj and out_proj
  end: number;
}

function planRunState(cfg: VimConfig, start: number): RunState {
  const { embedDim: D, innerDim: E, dState: N, dtRank: R, numTokens: L } = cfg;
  const M = cfg.gridSize * cfg.gridSize;
  let at = start;
  const take = (floats: number) => {
    const here = at;
    at = alignUp(at + floats * 4, BLOB_ALIGN);
    return here;
  };
  const img = take(cfg.channels * cfg.imageSize * cfg.imageSize), patches = take(M * cfg.channels * cfg.patchSize * cfg.patchSize);
  const embed = take(M * D), resid = take(L * D), normed = take(L * D), h = take(L * D), xz = take(L * 2 * E);
  const yf = take(L * E), yb = take(L * E), cls = take(D), logits = take(cfg.numClasses);
  const branch = (): BranchState => ({
    u: take(L * E), xd: take(L * (R + 2 * N)), delta: take(L * E),
    q: take(L * alignUp(Math.max(D, E, R), Q4_GROUP) / 4), rowScale: take(L), rowZero: take(L), rotation: take(48),
    groupSums: take(L * alignUp(Math.max(D, E, R), Q4_GROUP) / Q4_GROUP),
  });
  const branches: [BranchState, BranchState] = [branch(), branch()];
  return { img, patches, embed, resid, normed, h, xz, yf, yb, cls, logits, branches, end: at };
}

/**
 * Observes intermediate activations: tests compare them with the PyTorch reference, and calibration reads
 * `<linear>.input` ([L, K], what the Linear's quantizer sees). The values are only valid during the call.
 */
export type Tap = (name: string, values: Float32Array) => void;

export interface ModelOptions {
  /** Bit width of the activation quantizers of a quantized file (8; 6 or 4 simulate narrower ones). */
  activationBits?: number;
  /** Workers on the same memory (the kernels' threads build); without one, everything runs here. */
  pool?: ThreadPool;
}

/** Byte offsets of one Linear's tensors (0 = absent) and how it runs. */
interface LinearOp extends QuantizableLinear {
  layout: WeightLayout;
  weight: number;
  bias: number;
  weightScale: number;
  weightSum: number;
  inputScale: number;   // 0: dynamic per-token ranges
  inputZero: number;
  perToken: number;     // 1 when inputScale holds one scale per token
  shift: number;        // OS+ channel shift of the input
  signs: number;        // online Hadamard of the input
}

export class VimModel {
  readonly config: VimConfig;
  private readonly k: Kernels;
  private readonly w: Map<string, number>;   // tensor name -> byte offset in memory
  private readonly s: RunState;
  private readonly linears: Map<string, LinearOp>;
  private readonly qmin: number;
  private readonly qmax: number;
  private readonly pool: ThreadPool | undefined;
  /** One call list and its recorder per thread, made once: a parallel step only empties and refills them. */
  private readonly lanes: { calls: KernelCall[]; k: Kernels }[];

  constructor(config: VimConfig, kernels: Kernels, tensors: TensorEntry[], data: Uint8Array, options: ModelOptions = {}) {
    checkSupported(config);
    this.config = config;
    this.k = kernels;
    const base = kernels.heap_base();
    this.w = new Map(tensors.map((t) => [t.name, base + t.offset]));
    const plan = planOf(config, tensors);
    checkTensorsMatch(config, tensors, plan);
    const bits = options.activationBits ?? 8;
    if (!Number.isInteger(bits) || bits < 2 || bits > 8) fail('BAD_MODEL_FILE', `activation bits ${bits} not in 2..8`);
    this.pool = options.pool;
    this.lanes = Array.from({ length: this.pool?.threads ?? 0 }, () => {
      const calls: KernelCall[] = [];
      return { calls, k: recorder(kernels, calls) };
    });
    this.qmin = -(2 ** (bits - 1));
    this.qmax = 2 ** (bits - 1) - 1;
    this.linears = new Map(quantizableLinears(config).map((l) => {
      const at = (field: string) => this.w.get(`${l.name}.${field}`) ?? 0;
      const op: LinearOp = {
        ...l, layout: plan.weights.get(l.name) ?? 'kn8', weight: at('weight'), bias: at('bias'),
        weightScale: at('weight_scale'), weightSum: at('weight_sum'), inputScale: at('input_scale'),
        inputZero: at('input_zero'), perToken: plan.inputRanges === 'token' ? 1 : 0,
        shift: at('input_shift'), signs: at('input_signs'),
      };
      return [l.name, op];
    }));
    for (const op of this.linears.values()) {
      if (op.signs && !isHadamardSize(op.k)) fail('BAD_MODEL_FILE', `${op.name}: no Hadamard rotation of size ${op.k}`);
    }
    this.s = planRunState(config, alignUp(base + data.length, BLOB_ALIGN));
    ensureMemory(kernels, this.s.end);
    new Uint8Array(kernels.memory.buffer).set(data, base);
  }

  /** Stops the model's worker threads, if any; the model must not be used afterwards. */
  dispose(): void {
    this.pool?.dispose();
  }

  /** Threads one image is split over (1 without a pool). */
  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  /** Bytes of wasm memory this model uses (weights + activations). */
  get memoryBytes(): number {
    return this.k.memory.buffer.byteLength;
  }

  /** Logits for one normalised image [C, H, W] (float32, CHW). */
  forward(input: Float32Array, tap?: Tap): Float32Array {
    const c = this.config;
    const { embedDim: D, innerDim: E, numTokens: L } = c;
    const expected = c.channels * c.imageSize * c.imageSize;
    if (input.length !== expected) {
      fail('BAD_ARGUMENT', `input has ${input.length} values, the model takes [${c.channels}, ${c.imageSize}, ${c.imageSize}] = ${expected}`);
    }
    const k = this.k, s = this.s, w = (name: string) => this.weight(name);
    const view = (at: number, n: number) => new Float32Array(k.memory.buffer, at, n);
    view(s.img, expected).set(input);

    // §2.1 steps 1-3: patch embedding as a GEMM over patches, class token in the middle, position.
    const M = c.gridSize * c.gridSize, patchLen = c.channels * c.patchSize * c.patchSize;
    k.im2col_f32(s.img, c.channels, c.imageSize, c.imageSize, c.patchSize, c.stride, c.gridSize, s.patches);
    this.parallel(tap, M, (kk, r0, r1) => kk.gemm_f32(s.patches + r0 * patchLen * 4, patchLen, w('patch_embed.proj.weight'),
      w('patch_embed.proj.bias'), s.embed + r0 * D * 4, D, r1 - r0, patchLen, D));
    k.assemble_tokens_f32(s.embed, w('cls_token'), w('pos_embed'), s.resid, L, D, c.clsIndex);
    tap?.('tokens', view(s.resid, L * D));

    // §2.1 step 4 / §2.2: pre-norm residual blocks.
    for (let i = 0; i < c.depth; i++) {
      const p = `layers.${i}.mixer.`;
      if (tap) {
        if (i > 0) k.add_inplace_f32(s.resid, s.h, L * D);
        tap(`layers.${i}.resid`, view(s.resid, L * D));
      }
      this.parallel(tap, L, (kk, r0, r1) => {
        if (i > 0 && !tap) kk.add_inplace_f32(s.resid + r0 * D * 4, s.h + r0 * D * 4, (r1 - r0) * D);
        kk.rmsnorm_f32(s.resid + r0 * D * 4, w(`layers.${i}.norm.weight`), s.normed + r0 * D * 4, r1 - r0, D, c.normEps);
        this.linear(kk, `${p}in_proj`, s.normed, D, s.xz, 2 * E, s.branches[0], r0, r1, tap);
      });
      this.branches(p, tap);
      const gateScale = this.w.get(`${p}gate_scale`);
      this.parallel(tap, L, (kk, r0, r1) => {
        const rows = r1 - r0, yf = s.yf + r0 * E * 4, yb = s.yb + r0 * E * 4, z = s.xz + (r0 * 2 * E + E) * 4;
        if (gateScale === undefined) kk.combine_gate_f32(yf, yb, z, 2 * E, rows, E);
        else kk.combine_gate_scaled_f32(yf, yb, z, 2 * E, rows, E, gateScale);
        this.linear(kk, `${p}out_proj`, s.yf, E, s.h, D, s.branches[0], r0, r1, tap);
      });
      tap?.(`layers.${i}.h`, view(s.h, L * D));
    }

    // §2.1 steps 5-7: final add + norm, on the class token only; head.
    k.add_inplace_f32(s.resid, s.h, L * D);
    k.rmsnorm_f32(s.resid + c.clsIndex * D * 4, w('norm_f.weight'), s.cls, 1, D, c.normEps);
    tap?.('cls', view(s.cls, D));
    k.gemm_f32(s.cls, D, w('head.weight'), w('head.bias'), s.logits, c.numClasses, 1, D, c.numClasses);
    return view(s.logits, c.numClasses).slice();
  }

  /**
   * One parallel step over `rows` rows: `step(kernels, r0, r1)` issues the calls for rows [r0, r1). Runs
   * here, whole, without a pool or while tapping (a tap reads values between calls); else one row range per
   * thread.
   */
  private parallel(tap: Tap | undefined, rows: number, step: (k: Kernels, r0: number, r1: number) => void): void {
    const pool = this.pool;
    if (!pool || tap) {
      step(this.k, 0, rows);
      return;
    }
    this.lanes.forEach((lane, i) => {
      lane.calls.length = 0;
      const [r0, r1] = rowRange(rows, pool.threads, i);
      if (r1 > r0) step(lane.k, r0, r1);
    });
    pool.run(this.lanes.map((lane) => lane.calls));
  }

  /** §2.3 both directions: one after the other, or side by side on two threads. */
  private branches(p: string, tap?: Tap): void {
    const s = this.s;
    if (!this.pool || tap) {
      this.branch(this.k, p, '', s.yf, false, s.branches[0], tap);
      this.branch(this.k, p, '_b', s.yb, true, s.branches[0], tap);
      return;
    }
    const [forward, backward] = this.lanes;
    forward.calls.length = 0;
    backward.calls.length = 0;
    this.branch(forward.k, p, '', s.yf, false, s.branches[0]);
    this.branch(backward.k, p, '_b', s.yb, true, s.branches[1]);
    this.pool.run([forward.calls, backward.calls]);
  }

  /** One direction of §2.3 Branch: conv + SiLU, x_proj, dt_proj + softplus, selective scan. */
  private branch(k: Kernels, p: string, dir: '' | '_b', out: number, reverse: boolean, b: BranchState, tap?: Tap): void {
    const { innerDim: E, dState: N, dtRank: R, dConv: K, numTokens: L } = this.config;
    const s = this.s;
    const w = (module: string, field = '') => this.weight(`${p}${module}${dir}${field}`);
    const xdWidth = R + 2 * N;
    k.conv1d_silu_f32(s.xz, 2 * E, w('conv1d', '.weight'), w('conv1d', '.bias'), b.u, L, E, K, reverse ? 1 : 0);
    this.linear(k, `${p}x_proj${dir}`, b.u, E, b.xd, xdWidth, b, 0, L, tap);
    this.linear(k, `${p}dt_proj${dir}`, b.xd, xdWidth, b.delta, E, b, 0, L, tap);
    k.softplus_inplace_f32(b.delta, L * E);
    k.selective_scan_f32(b.u, b.delta, w('A'), b.xd + R * 4, xdWidth, w('D'), out, L, E, reverse ? 1 : 0);
  }

  /**
   * Rows [r0, r1) of out[L, n] (row stride ldOut) = x[L, k] (row stride ldx) @ W^T + bias, on the kernels
   * the weight's layout names. The input's transforms (OS+ shift, online Hadamard) run in place first: the
   * inputs that carry them (s.normed, s.yf) have no other reader. Every kernel here works row by row.
   */
  private linear(k: Kernels, name: string, x: number, ldx: number, out: number, ldOut: number, b: BranchState,
                 r0: number, r1: number, tap?: Tap): void {
    const op = this.linears.get(name) ?? fail('BAD_MODEL_FILE', `unknown linear ${name}`);
    const rows = r1 - r0, xr = x + r0 * ldx * 4, outr = out + r0 * ldOut * 4;
    if (op.shift) k.shift_channels_f32(xr, ldx, rows, op.k, op.shift);
    if (op.signs) k.hadamard_rows_f32(xr, ldx, rows, op.k, op.signs, b.rotation);
    if (tap) tap(`${name}.input`, this.rows(x, ldx, op.k));
    if (op.layout === 'kn8') {
      k.gemm_f32(xr, ldx, op.weight, op.bias, outr, ldOut, rows, op.k, op.n);
      return;
    }
    const ldq = alignUp(op.k, Q4_GROUP);
    const perRow = op.perToken ? r0 * 4 : 0;
    const q = b.q + r0 * ldq, sx = b.rowScale + r0 * 4, zx = b.rowZero + r0 * 4;
    k.quantize_s8(xr, ldx, rows, op.k, op.inputScale && op.inputScale + perRow, op.inputZero && op.inputZero + perRow,
      op.perToken, this.qmin, this.qmax, q, ldq, sx, zx);
    if (op.layout === 'q8') k.gemm_s8(q, ldq, rows, op.k, op.weight, op.n, op.weightScale, op.weightSum, sx, zx, op.bias, outr, ldOut);
    else k.gemm_s4(q, ldq, rows, op.k, op.weight, op.n, op.weightScale, op.weightSum, sx, zx, op.bias, outr, ldOut, b.groupSums + r0 * (ldq / Q4_GROUP) * 4);
  }

  /** [L, cols] floats at row stride ld, as one array (a view when contiguous). */
  private rows(at: number, ld: number, cols: number): Float32Array {
    const L = this.config.numTokens;
    const all = new Float32Array(this.k.memory.buffer, at, (L - 1) * ld + cols);
    if (ld === cols) return all;
    const out = new Float32Array(L * cols);
    for (let t = 0; t < L; t++) out.set(all.subarray(t * ld, t * ld + cols), t * cols);
    return out;
  }

  private weight(name: string): number {
    return this.w.get(name) ?? fail('BAD_MODEL_FILE', `tensor ${name} is missing`);
  }
}

/** The kernels' shape requirements, checked once with a clear message. */
function checkSupported(c: VimConfig): void {
  if (c.dState !== 16) fail('BAD_MODEL', `d_state ${c.dState} is not supported (the scan kernel needs 16)`);
  if (c.embedDim % 4 || c.innerDim % 4) {
    fail('BAD_MODEL', `embed dim ${c.embedDim} and inner dim ${c.innerDim} must be multiples of 4`);
  }
}

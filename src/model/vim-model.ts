/**
 * A loaded Vim classifier: weights copied into the kernels' memory once, every activation buffer planned
 * once (no allocation per image), and forward() walking spec §2 step by step. The Linear layers of the mixer
 * run on whatever their weight's stored layout says: gemm_f32 for 'kn8', or quantize_s8 + gemm_s8 / gemm_s4
 * for the int8 / int4 layouts of a quantized file (docs/FORMAT.md).
 */
import type { VimConfig } from './config.js';
import { ensureMemory, type Kernels } from './kernels.js';
import { checkTensorsMatch, planOf, quantizableLinears, Q4_GROUP, type QuantizableLinear, type WeightLayout }
  from './runtime-tensors.js';
import { alignUp, BLOB_ALIGN, type TensorEntry } from '../formats/vimq.js';
import { fail } from '../errors.js';

/** Byte offsets of the activation buffers (the run state), shapes in spec notation. */
interface RunState {
  img: number;      // [C, H, W] normalised input
  patches: number;  // [M, C*P*P] im2col rows
  embed: number;    // [M, D] patch embeddings
  resid: number;    // [L, D] residual stream (fp32)
  normed: number;   // [L, D] RMSNorm output
  h: number;        // [L, D] mixer output
  xz: number;       // [L, 2E] in_proj output: x | z
  u: number;        // [L, E] conv + SiLU output of the branch being computed
  xd: number;       // [L, R + 2N] x_proj output: dt | B | C
  delta: number;    // [L, E]
  yf: number;       // [L, E] forward branch output, then the gated combination
  yb: number;       // [L, E] backward branch output
  cls: number;      // [D] final-normed class token
  logits: number;   // [numClasses]
  q: number;        // int8 [L, kp] quantized input of the Linear being run (kp: its K padded to 64)
  rowScale: number; // [L] f32 scale of each row of q
  rowZero: number;  // [L] i32 zero point of each row of q
  end: number;
}

function planRunState(cfg: VimConfig, start: number): RunState {
  const { embedDim: D, innerDim: E, dState: N, dtRank: R, numTokens: L } = cfg;
  const M = cfg.gridSize * cfg.gridSize;
  const sizes: [keyof RunState, number][] = [
    ['img', cfg.channels * cfg.imageSize * cfg.imageSize],
    ['patches', M * cfg.channels * cfg.patchSize * cfg.patchSize],
    ['embed', M * D], ['resid', L * D], ['normed', L * D], ['h', L * D],
    ['xz', L * 2 * E], ['u', L * E], ['xd', L * (R + 2 * N)], ['delta', L * E],
    ['yf', L * E], ['yb', L * E], ['cls', D], ['logits', cfg.numClasses],
    ['q', L * alignUp(Math.max(D, E, R), Q4_GROUP) / 4], ['rowScale', L], ['rowZero', L],
  ];
  const state = {} as RunState;
  let at = start;
  for (const [name, floats] of sizes) {
    state[name] = at;
    at = alignUp(at + floats * 4, BLOB_ALIGN);
  }
  state.end = at;
  return state;
}

/**
 * Observes intermediate activations: tests compare them with the PyTorch reference, and calibration reads
 * `<linear>.input` ([L, K], what the Linear's quantizer sees). The values are only valid during the call.
 */
export type Tap = (name: string, values: Float32Array) => void;

export interface ModelOptions {
  /** Bit width of the activation quantizers of a quantized file (8; 6 or 4 simulate narrower ones). */
  activationBits?: number;
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
    k.gemm_f32(s.patches, patchLen, w('patch_embed.proj.weight'), w('patch_embed.proj.bias'), s.embed, D, M, patchLen, D);
    k.assemble_tokens_f32(s.embed, w('cls_token'), w('pos_embed'), s.resid, L, D, c.clsIndex);
    tap?.('tokens', view(s.resid, L * D));

    // §2.1 step 4 / §2.2: pre-norm residual blocks.
    for (let i = 0; i < c.depth; i++) {
      if (i > 0) k.add_inplace_f32(s.resid, s.h, L * D);
      tap?.(`layers.${i}.resid`, view(s.resid, L * D));
      k.rmsnorm_f32(s.resid, w(`layers.${i}.norm.weight`), s.normed, L, D, c.normEps);
      this.mixer(i, tap);
      tap?.(`layers.${i}.h`, view(s.h, L * D));
    }

    // §2.1 steps 5-7: final add + norm, on the class token only; head.
    k.add_inplace_f32(s.resid, s.h, L * D);
    k.rmsnorm_f32(s.resid + c.clsIndex * D * 4, w('norm_f.weight'), s.cls, 1, D, c.normEps);
    tap?.('cls', view(s.cls, D));
    k.gemm_f32(s.cls, D, w('head.weight'), w('head.bias'), s.logits, c.numClasses, 1, D, c.numClasses);
    return view(s.logits, c.numClasses).slice();
  }

  /** §2.3: in_proj, both branches, halved sum gated by silu(z), out_proj. Reads s.normed, writes s.h. */
  private mixer(i: number, tap?: Tap): void {
    const { embedDim: D, innerDim: E, numTokens: L } = this.config;
    const k = this.k, s = this.s, p = `layers.${i}.mixer.`;
    this.linear(`${p}in_proj`, s.normed, D, s.xz, 2 * E, tap);
    this.branch(p, '', s.yf, false, tap);
    this.branch(p, '_b', s.yb, true, tap);
    const gateScale = this.w.get(`${p}gate_scale`);
    if (gateScale === undefined) k.combine_gate_f32(s.yf, s.yb, s.xz + E * 4, 2 * E, L, E);
    else k.combine_gate_scaled_f32(s.yf, s.yb, s.xz + E * 4, 2 * E, L, E, gateScale);
    this.linear(`${p}out_proj`, s.yf, E, s.h, D, tap);
  }

  /** One direction of §2.3 Branch: conv + SiLU, x_proj, dt_proj + softplus, selective scan. */
  private branch(p: string, dir: '' | '_b', out: number, reverse: boolean, tap?: Tap): void {
    const { innerDim: E, dState: N, dtRank: R, dConv: K, numTokens: L } = this.config;
    const k = this.k, s = this.s;
    const w = (module: string, field = '') => this.weight(`${p}${module}${dir}${field}`);
    const xdWidth = R + 2 * N;
    k.conv1d_silu_f32(s.xz, 2 * E, w('conv1d', '.weight'), w('conv1d', '.bias'), s.u, L, E, K, reverse ? 1 : 0);
    this.linear(`${p}x_proj${dir}`, s.u, E, s.xd, xdWidth, tap);
    this.linear(`${p}dt_proj${dir}`, s.xd, xdWidth, s.delta, E, tap);
    k.softplus_inplace_f32(s.delta, L * E);
    k.selective_scan_f32(s.u, s.delta, w('A'), s.xd + R * 4, xdWidth, w('D'), out, L, E, reverse ? 1 : 0);
  }

  /**
   * out[L, n] (row stride ldOut) = x[L, k] (row stride ldx) @ W^T + bias, on the kernels the weight's layout
   * names. The input's transforms (OS+ shift, online Hadamard) run in place first: the inputs that carry
   * them (s.normed, s.yf) have no other reader.
   */
  private linear(name: string, x: number, ldx: number, out: number, ldOut: number, tap?: Tap): void {
    const k = this.k, s = this.s, L = this.config.numTokens;
    const op = this.linears.get(name) ?? fail('BAD_MODEL_FILE', `unknown linear ${name}`);
    if (op.shift) k.shift_channels_f32(x, ldx, L, op.k, op.shift);
    if (op.signs) k.hadamard_rows_f32(x, ldx, L, op.k, op.signs);
    if (tap) tap(`${name}.input`, this.rows(x, ldx, op.k));
    if (op.layout === 'kn8') {
      k.gemm_f32(x, ldx, op.weight, op.bias, out, ldOut, L, op.k, op.n);
      return;
    }
    const ldq = alignUp(op.k, Q4_GROUP);
    k.quantize_s8(x, ldx, L, op.k, op.inputScale, op.inputZero, op.perToken, this.qmin, this.qmax,
      s.q, ldq, s.rowScale, s.rowZero);
    const gemm = op.layout === 'q8' ? k.gemm_s8 : k.gemm_s4;
    gemm(s.q, ldq, L, op.k, op.weight, op.n, op.weightScale, op.weightSum, s.rowScale, s.rowZero, op.bias, out, ldOut);
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

/** Sizes hadamard_rows_f32 rotates: 2^k and 12·2^k. */
export function isHadamardSize(n: number): boolean {
  const m = n % 12 === 0 ? n / 12 : n;
  return Number.isInteger(m) && m > 0 && (m & (m - 1)) === 0;
}

/** The kernels' shape requirements, checked once with a clear message. */
function checkSupported(c: VimConfig): void {
  if (c.dState !== 16) fail('BAD_MODEL', `d_state ${c.dState} is not supported (the scan kernel needs 16)`);
  if (c.embedDim % 4 || c.innerDim % 4) {
    fail('BAD_MODEL', `embed dim ${c.embedDim} and inner dim ${c.innerDim} must be multiples of 4`);
  }
}

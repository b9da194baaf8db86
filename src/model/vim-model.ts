/**
 * A loaded Vim classifier: weights copied into the kernels' memory once and resolved to per-layer records of
 * byte offsets, every activation buffer planned once (run-state.ts, no allocation per image), and forward()
 * walking docs/MODEL.md §2 step by step. The Linear layers of the mixer run on whatever their weight's stored
 * layout says: gemm_f32_4x8 for 'kn8', or quantize_s8 + gemm_qs8_4x4_dot16 / gemm_qs4 for the int8 / int4
 * layouts of a quantized file (docs/FORMAT.md). With a ThreadPool (parallel.ts), each layer is four parallel
 * steps, each divided over every thread: both directions of the branch laid end to end, conv + SiLU by
 * channels, x_proj + dt_proj + softplus by token rows (x_proj needs all channels of a token), the scan by
 * channels; then gate + out_proj by token rows, with the next layer's residual add + norm + in_proj on the
 * same rows in the same step (the first layer's norm + in_proj is a step of its own). Every hand-off costs
 * the threads a meeting, so steps that need no other thread's rows are not split apart. An Observer sees the
 * activations between those steps, so observing runs the very same kernel calls. Every § below is a section
 * of docs/MODEL.md.
 */
import type { VimConfig } from './config.js';
import { ensureMemory, type Kernels } from './kernels.js';
import { alignUp, BLOB_ALIGN, checkKernelLimits, checkTensorsMatch, isHadamardSize, planOf, quantizableLinears, Q4_GROUP,
  type QuantizableLinear, type TensorEntry, type TensorPlan, type WeightLayout } from './contract.js';
import { planRunState, ROTATION_SCRATCH, type BranchBuffers, type LinearScratch, type OwnedInput, type Rows,
  type RunState } from './run-state.js';
import { fail } from '../errors.js';
import { recorder, shareRange, type KernelCall, type StepName, type ThreadPool } from './parallel.js';

/** §2.3: the branch's two directions, one routine with each its own weights (`_b`) and token order. */
export interface Direction {
  name: 'forward' | 'backward';
  suffix: '' | '_b';
  reverse: 0 | 1;   // 1: conv taps mirrored and scan from token L-1 down to 0
}
const DIRECTIONS: readonly [Direction, Direction] =
  [{ name: 'forward', suffix: '', reverse: 0 }, { name: 'backward', suffix: '_b', reverse: 1 }];

/** Channels a thread's share of the conv and the scan is a multiple of: the conv runs 4 channels a vector. */
const CHANNEL_GRAIN = 4;

/** One direction's values after the branch step (§2.3), each in original token order. */
export interface BranchValues {
  u: Float32Array;      // [L, E] conv + SiLU output
  delta: Float32Array;  // [L, E] softplus(dt_proj(dt))
  B: Float32Array;      // [L, N]
  C: Float32Array;      // [L, N]
  y: Float32Array;      // [L, E] scan output, D skip included
}

/**
 * Sees the activations of a forward pass at named points, each called between the kernel steps, after the
 * step that produced it: the same kernels run in the same order on the same threads whatever is observed.
 * Values are only valid during the call (views into the model's memory, or copies of strided rows).
 */
export interface Observer {
  /** §2.1 step 2: patch embeddings [M, D], row-major over the grid. */
  patchEmbed?(values: Float32Array): void;
  /** §2.1 step 3: tokens with the class token at row c and the positions added [L, D]. */
  tokens?(values: Float32Array): void;
  /** §2.2: the residual stream entering block `layer` [L, D]. */
  residual?(layer: number, values: Float32Array): void;
  /** The input of a quantizable Linear as its quantizer sees it, after its transforms [L, k]. */
  linearInput?(site: QuantizableLinear, values: Float32Array): void;
  /** §2.3: in_proj's output, the branch input x and the gate input z [L, E] each. */
  mixerInput?(layer: number, x: Float32Array, z: Float32Array): void;
  /** §2.3: one direction of the branch: conv output, SSM parameters and scan output. */
  branch?(layer: number, direction: Direction['name'], values: BranchValues): void;
  /** §2.2: the mixer output h of block `layer` [L, D]. */
  mixerOutput?(layer: number, values: Float32Array): void;
  /** §2.1 step 5: the residual after the last block's add, norm_f's input [L, D]. */
  finalResidual?(values: Float32Array): void;
  /** §2.1 step 6: norm_f of the class token [D], the head's input. */
  classToken?(values: Float32Array): void;
}

export interface ModelOptions {
  /** Bit width of the activation quantizers of a quantized file (8; 6 or 4 simulate narrower ones). */
  activationBits?: number;
  /** Workers on the same memory (the kernels' threads build); without one, everything runs here. */
  pool?: ThreadPool;
}

/** An fp32 GEMM's stored weight ('kn8') and bias, byte offsets. */
interface Dense {
  weight: number;
  bias: number;
}

/** Input transforms of a Linear, run in place on its input before it (byte offsets, 0 = absent). */
interface InputTransform {
  shift: number;   // OS+ channel shift [k]
  signs: number;   // online Hadamard signs [k]: x <- (x ⊙ signs)·H/√k
}

/**
 * One Linear of the mixer, resolved at load: rows of out[L, n] = x[L, k] @ Wᵀ + bias on the kernels its
 * weight's layout names. Tensors are byte offsets, 0 = absent. A Linear with input transforms overwrites its
 * input, so it takes an OwnedInput: the type says so, and resolveWeights checks it against the run state.
 */
type LinearOp = {
  site: QuantizableLinear;
  layout: WeightLayout;
  weight: number;
  bias: number;
  weightScale: number;
  weightSum: number;
  inputScale: number;   // 0: dynamic per-token ranges
  inputZero: number;
  perToken: 0 | 1;      // 1 when inputScale holds one scale per token
  out: Rows;            // [L, n]
  scratch: LinearScratch;
} & ({ x: Rows; transform?: undefined } | { x: OwnedInput; transform: InputTransform });

/** One direction of a block's branch (§2.3): conv + SiLU, x_proj, dt_proj + softplus, selective scan. */
interface Branch {
  direction: Direction;
  conv: Dense;        // weight [K, E], bias [E]
  xProj: LinearOp;    // u -> xd = dt | B | C
  dtProj: LinearOp;   // dt -> delta (the bias goes inside the softplus)
  A: number;          // [E, N], -exp(A_log)
  D: number;          // [E] skip
  buffers: BranchBuffers;
  y: number;          // output [L, E]
}

/** One block (§2.2): RMSNorm, in_proj, both branches, gate, out_proj. */
interface Layer {
  norm: number;       // RMSNorm weight [D]
  inProj: LinearOp;   // normed -> xz = x | z
  branches: [Branch, Branch];
  gateScale: number;  // [E] MambaQuant's scaled SiLU gate; 0: plain SiLU
  outProj: LinearOp;  // gated branch sum -> h
}

/** Every tensor the forward pass reads, as records of byte offsets (a Linear also names its buffers). */
interface Weights {
  patchEmbed: Dense;
  clsToken: number;   // [D]
  posEmbed: number;   // [L, D]
  layers: Layer[];
  normF: number;      // [D]
  head: Dense;
}

/**
 * Where a model's weights go in the kernels' memory (from heap_base), the memory grown for them and the run
 * state behind them. A loader that reads the data section straight into it (model-file.ts loadModelFrom)
 * holds the weights once; VimModel then finds them in place instead of copying them.
 */
export function weightArena(config: VimConfig, kernels: Kernels, dataBytes: number): Uint8Array {
  const base = kernels.heap_base();
  ensureMemory(kernels, planRunState(config, alignUp(base + dataBytes, BLOB_ALIGN)).end);
  return new Uint8Array(kernels.memory.buffer, base, dataBytes);
}

export class VimModel {
  readonly config: VimConfig;
  private readonly k: Kernels;
  private readonly weights: Weights;
  private readonly s: RunState;
  private readonly qmin: number;
  private readonly qmax: number;
  private readonly pool: ThreadPool | undefined;
  /** One call list and its recorder per thread, made once: a parallel step only empties and refills them. */
  private readonly lanes: { calls: KernelCall[]; k: Kernels }[];

  constructor(config: VimConfig, kernels: Kernels, tensors: TensorEntry[], data: Uint8Array, options: ModelOptions = {}) {
    checkKernelLimits(config);
    this.config = config;
    this.k = kernels;
    const base = kernels.heap_base();
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
    this.s = planRunState(config, alignUp(base + data.length, BLOB_ALIGN), this.threads);
    this.weights = resolveWeights(config, plan, new Map(tensors.map((t) => [t.name, base + t.offset])), this.s);
    const arena = weightArena(config, kernels, data.length);
    if (!(data.buffer === arena.buffer && data.byteOffset === arena.byteOffset)) arena.set(data);
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
  forward(input: Float32Array, observer?: Observer): Float32Array {
    const c = this.config, k = this.k, s = this.s, w = this.weights, o = observer;
    const { embedDim: D, innerDim: E, numTokens: L } = c;
    const expected = c.channels * c.imageSize * c.imageSize;
    if (input.length !== expected) {
      fail('BAD_ARGUMENT', `input has ${input.length} values, the model takes [${c.channels}, ${c.imageSize}, ${c.imageSize}] = ${expected}`);
    }
    this.floats(s.img, expected).set(input);

    // §2.1 steps 1-3: patch embedding as a GEMM over im2col rows, class token in the middle, positions added.
    const M = c.gridSize * c.gridSize, patchLen = c.channels * c.patchSize * c.patchSize;
    k.im2col_f32(s.img, c.channels, c.imageSize, c.imageSize, c.patchSize, c.stride, c.gridSize, s.patches);
    this.parallel('patch embed', M, 1, (kk, r0, r1) => kk.gemm_f32_4x8(s.patches + r0 * patchLen * 4, patchLen, w.patchEmbed.weight,
      w.patchEmbed.bias, s.embed + r0 * D * 4, D, r1 - r0, patchLen, D));
    o?.patchEmbed?.(this.floats(s.embed, M * D));
    k.assemble_tokens_f32(s.embed, w.clsToken, w.posEmbed, s.resid, L, D, c.clsIndex);
    o?.tokens?.(this.floats(s.resid, L * D));

    // §2.1 step 4, §2.2: pre-norm residual blocks, resid += h from the second block on. A block's gate +
    // out_proj and the next block's add + norm + in_proj work on the same token rows, so they are one step.
    this.parallel('norm + in_proj', L, 1, (kk, r0, r1, t) => this.normAndInProj(kk, 0, r0, r1, t));
    w.layers.forEach((layer, i) => {
      o?.residual?.(i, this.floats(s.resid, L * D));
      this.observeInput(layer.inProj, o);
      o?.mixerInput?.(i, this.rows({ at: s.xz, ld: 2 * E }, E), this.rows({ at: s.xz + E * 4, ld: 2 * E }, E));

      this.branch(layer.branches);
      for (const b of layer.branches) this.observeBranch(i, b, o);

      // §2.3: y = (y_f + y_b) / 2 · gate(z), then out_proj.
      const next = i + 1 < w.layers.length ? i + 1 : undefined;
      this.parallel(next ? 'gate + out_proj + next norm + in_proj' : 'gate + out_proj', L, 1, (kk, r0, r1, t) => {
        const rows = r1 - r0, yf = s.yf.at + r0 * E * 4, yb = s.yb + r0 * E * 4, z = s.xz + (r0 * 2 * E + E) * 4;
        if (layer.gateScale) kk.combine_gate_scaled_f32(yf, yb, z, 2 * E, rows, E, layer.gateScale);
        else kk.combine_gate_f32(yf, yb, z, 2 * E, rows, E);
        this.linear(kk, layer.outProj, r0, r1, t);
        if (next !== undefined) this.normAndInProj(kk, next, r0, r1, t);
      });
      this.observeInput(layer.outProj, o);
      o?.mixerOutput?.(i, this.floats(s.h, L * D));
    });

    // §2.1 steps 5-7: final add, norm_f on the class token only, head.
    k.add_inplace_f32(s.resid, s.h, L * D);
    o?.finalResidual?.(this.floats(s.resid, L * D));
    k.rmsnorm_f32(s.resid + c.clsIndex * D * 4, w.normF, s.cls, 1, D, c.normEps);
    o?.classToken?.(this.floats(s.cls, D));
    k.gemm_f32_4x8(s.cls, D, w.head.weight, w.head.bias, s.logits, c.numClasses, 1, D, c.numClasses);
    return this.floats(s.logits, c.numClasses).slice();
  }

  /** Rows [r0, r1) of block `layer`'s first step: resid += h (from the second block on), RMSNorm, in_proj. */
  private normAndInProj(k: Kernels, layer: number, r0: number, r1: number, thread: number): void {
    const s = this.s, D = this.config.embedDim, resid = s.resid + r0 * D * 4;
    if (layer > 0) k.add_inplace_f32(resid, s.h + r0 * D * 4, (r1 - r0) * D);
    k.rmsnorm_f32(resid, this.weights.layers[layer].norm, s.normed.at + r0 * D * 4, r1 - r0, D, this.config.normEps);
    this.linear(k, this.weights.layers[layer].inProj, r0, r1, thread);
  }

  /**
   * One parallel step over `units` units of work (token rows or channels): `step(kernels, a, b, thread)`
   * issues the calls for units [a, b) on that thread. Runs here, whole, without a pool; else one share
   * (shareRange, boundaries on multiples of `grain`) per thread.
   */
  private parallel(name: StepName, units: number, grain: number, step: (k: Kernels, a: number, b: number, thread: number) => void): void {
    const pool = this.pool;
    if (!pool) {
      step(this.k, 0, units, 0);
      return;
    }
    this.lanes.forEach((lane, i) => {
      lane.calls.length = 0;
      const [a, b] = shareRange(units, pool.threads, i, grain);
      if (b > a) step(lane.k, a, b, i);
    });
    pool.run(this.lanes.map((lane) => lane.calls), name);
  }

  /**
   * A parallel step over both directions of the branch: each has `size` units (L rows or E channels), laid
   * end to end so that the threads share 2·size; `step(kernels, branch, a, b)` issues units [a, b) of one.
   */
  private bothDirections(name: StepName, branches: [Branch, Branch], size: number, grain: number,
                         step: (k: Kernels, b: Branch, a: number, z: number, thread: number) => void): void {
    this.parallel(name, 2 * size, grain, (k, a, z, thread) => branches.forEach((b, j) => {
      const lo = Math.max(a - j * size, 0), hi = Math.min(z - j * size, size);
      if (hi > lo) step(k, b, lo, hi, thread);
    }));
  }

  /**
   * §2.3 Branch, both directions: u = SiLU(conv(x)), dt | B | C = x_proj(u), delta = softplus(dt_proj(dt)),
   * scan. Channels are independent in the conv and the scan; x_proj needs all channels of a token, so it and
   * what follows it row by row run between them, by token rows.
   */
  private branch(branches: [Branch, Branch]): void {
    const { innerDim: E, dState: N, dtRank: R, dConv: K, numTokens: L } = this.config;
    const xz = this.s.xz;
    this.bothDirections('conv + SiLU', branches, E, CHANNEL_GRAIN, (k, b, c0, c1) => {
      const at = c0 * 4;
      k.conv1d_silu_f32(xz + at, 2 * E, b.conv.weight + at, b.conv.bias + at, b.buffers.u + at, E, L, c1 - c0, K, b.direction.reverse);
    });
    this.bothDirections('x_proj + dt_proj + softplus', branches, L, 1, (k, b, r0, r1, thread) => {
      this.linear(k, b.xProj, r0, r1, thread);
      this.linear(k, b.dtProj, r0, r1, thread);
      k.softplus_inplace_f32(b.buffers.delta + r0 * E * 4, (r1 - r0) * E);
    });
    this.bothDirections('scan', branches, E, CHANNEL_GRAIN, (k, b, c0, c1) => {
      const { u, xd, delta } = b.buffers, at = c0 * 4;
      k.selective_scan_f32(u + at, delta + at, b.A + at * N, xd + R * 4, R + 2 * N, b.D + at, b.y + at, E, L, c1 - c0, b.direction.reverse);
    });
  }

  /** Rows [r0, r1) of one Linear, on `thread` (whose GEMM scratch it uses); every kernel here works row by row. */
  private linear(k: Kernels, op: LinearOp, r0: number, r1: number, thread: number): void {
    const { site: { k: K, n }, x, out, scratch } = op;
    const rows = r1 - r0, xr = x.at + r0 * x.ld * 4, outr = out.at + r0 * out.ld * 4;
    if (op.transform?.shift) k.shift_channels_f32(xr, x.ld, rows, K, op.transform.shift);
    if (op.transform?.signs) k.hadamard_rows_f32(xr, x.ld, rows, K, op.transform.signs, scratch.rotation + r0 * ROTATION_SCRATCH * 4);
    if (op.layout === 'kn8') {
      k.gemm_f32_4x8(xr, x.ld, op.weight, op.bias, outr, out.ld, rows, K, n);
      return;
    }
    const ldq = alignUp(K, Q4_GROUP);
    const perRow = op.perToken ? r0 * 4 : 0;
    const q = scratch.q + r0 * scratch.kp, sx = scratch.rowScale + r0 * 4, zx = scratch.rowZero + r0 * 4;
    k.quantize_s8(xr, x.ld, rows, K, op.inputScale && op.inputScale + perRow, op.inputZero && op.inputZero + perRow,
      op.perToken, this.qmin, this.qmax, q, ldq, sx, zx);
    if (op.layout === 'q8') k.gemm_qs8_4x4_dot16(q, ldq, rows, K, op.weight, n, op.weightScale, op.weightSum, sx, zx, op.bias, outr, out.ld);
    else k.gemm_qs4(q, ldq, rows, K, op.weight, n, op.weightScale, op.weightSum, sx, zx, op.bias, outr, out.ld,
      this.s.gemmScratch + thread * this.s.gemmScratchBytes);
  }

  private observeInput(op: LinearOp, o: Observer | undefined): void {
    o?.linearInput?.(op.site, this.rows(op.x, op.site.k));
  }

  private observeBranch(layer: number, b: Branch, o: Observer | undefined): void {
    this.observeInput(b.xProj, o);
    this.observeInput(b.dtProj, o);
    if (!o?.branch) return;
    const { innerDim: E, dState: N, dtRank: R, numTokens: L } = this.config;
    const { u, xd, delta } = b.buffers;
    o.branch(layer, b.direction.name, {
      u: this.floats(u, L * E), delta: this.floats(delta, L * E), y: this.floats(b.y, L * E),
      B: this.rows({ at: xd + R * 4, ld: R + 2 * N }, N), C: this.rows({ at: xd + (R + N) * 4, ld: R + 2 * N }, N),
    });
  }

  private floats(at: number, n: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, at, n);
  }

  /** [L, cols] floats at row stride ld, as one array (a view when contiguous). */
  private rows({ at, ld }: Rows, cols: number): Float32Array {
    const L = this.config.numTokens;
    const all = this.floats(at, (L - 1) * ld + cols);
    if (ld === cols) return all;
    const out = new Float32Array(L * cols);
    for (let t = 0; t < L; t++) out.set(all.subarray(t * ld, t * ld + cols), t * cols);
    return out;
  }
}

/** Every tensor's byte offset, looked up by name once, into the records forward() reads. */
function resolveWeights(cfg: VimConfig, plan: TensorPlan, offsets: Map<string, number>, s: RunState): Weights {
  const { embedDim: D, innerDim: E, dState: N, dtRank: R } = cfg;
  const tensor = (name: string) => offsets.get(name) ?? fail('BAD_MODEL_FILE', `tensor ${name} is missing`);
  const optional = (name: string) => offsets.get(name) ?? 0;
  const sites = new Map(quantizableLinears(cfg).map((l) => [l.name, l]));
  const linear = (name: string, x: Rows | OwnedInput, out: Rows, scratch: LinearScratch): LinearOp => {
    const site = sites.get(name) ?? fail('BAD_MODEL_FILE', `unknown linear ${name}`);
    const field = (f: string) => optional(`${name}.${f}`);
    const common = {
      site, layout: plan.weights.get(name) ?? 'kn8', weight: tensor(`${name}.weight`), bias: field('bias'),
      weightScale: field('weight_scale'), weightSum: field('weight_sum'), inputScale: field('input_scale'),
      inputZero: field('input_zero'), perToken: plan.inputRanges === 'token' ? 1 : 0, out, scratch,
    } as const;
    const transform = { shift: field('input_shift'), signs: field('input_signs') };
    if (!transform.shift && !transform.signs) return { ...common, x };
    if (transform.signs && !isHadamardSize(site.k)) fail('BAD_MODEL_FILE', `${name}: no Hadamard rotation of size ${site.k}`);
    // An in-place transform of an input that another kernel reads would change that kernel's result.
    if (!('ownedByItsLinear' in x)) throw new Error(`${name}: input transforms on an input that other kernels read`);
    return { ...common, x, transform };
  };
  const layers = Array.from({ length: cfg.depth }, (_, i): Layer => {
    const p = `layers.${i}.mixer.`;
    const inProjScratch = s.branches[0].scratch;
    const branches = DIRECTIONS.map((direction, j): Branch => {
      const buffers = s.branches[j], d = direction.suffix;
      return {
        direction, buffers, y: j === 0 ? s.yf.at : s.yb,
        conv: { weight: tensor(`${p}conv1d${d}.weight`), bias: tensor(`${p}conv1d${d}.bias`) },
        xProj: linear(`${p}x_proj${d}`, { at: buffers.u, ld: E }, { at: buffers.xd, ld: R + 2 * N }, buffers.scratch),
        dtProj: linear(`${p}dt_proj${d}`, { at: buffers.xd, ld: R + 2 * N }, { at: buffers.delta, ld: E }, buffers.scratch),
        A: tensor(`${p}A${d}`), D: tensor(`${p}D${d}`),
      };
    }) as [Branch, Branch];
    return {
      norm: tensor(`layers.${i}.norm.weight`),
      inProj: linear(`${p}in_proj`, s.normed, { at: s.xz, ld: 2 * E }, inProjScratch),
      branches,
      gateScale: optional(`${p}gate_scale`),
      outProj: linear(`${p}out_proj`, s.yf, { at: s.h, ld: D }, inProjScratch),
    };
  });
  return {
    patchEmbed: { weight: tensor('patch_embed.proj.weight'), bias: tensor('patch_embed.proj.bias') },
    clsToken: tensor('cls_token'), posEmbed: tensor('pos_embed'), layers,
    normF: tensor('norm_f.weight'), head: { weight: tensor('head.weight'), bias: tensor('head.bias') },
  };
}

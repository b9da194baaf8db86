/**
 * What the writers of a model (src/convert/) and its reader (model-file.ts, vim-model.ts) agree on: how a
 * .vimq file is recognised, its metadata, which tensors a config needs under which names, how each tensor is
 * laid out and how many bytes it takes, and the names of the quantization methods and bit widths
 * (docs/FORMAT.md). A leaf: it imports only types and errors, so the CLI can list the names at start-up.
 *
 * Differences of the stored tensors from the checkpoint's (docs/FORMAT.md):
 * - Linear and patch-conv weights are stored transposed and padded ('kn8') for the fp32 GEMM kernel, or, for
 *   the Linear layers of the mixer in a quantized file, as int8 ('q8') or int4 ('q4g64') panels for the
 *   integer kernels, with their scales, sums and input quantizer.
 * - conv1d weights [E, 1, K] are stored as their transpose [K, E] (logical shape [K, E], 'plain').
 * - A_log [E, N] is stored as A = -exp(A_log) under the name `A` (`A_b`), as the scan uses it.
 * - Quantization transforms may add the optional fp32 tensors of `Extra`.
 */
import type { VimConfig } from './config.js';
import type { PreprocessSpec } from '../preprocess/pipeline.js';
import { fail } from '../errors.js';

// --- the file ---------------------------------------------------------------------------------------------

export const VIMQ_MAGIC = 'VIMQ';

/** Whether the bytes start with the .vimq magic (anything else is read as a checkpoint). */
export function isVimq(bytes: Uint8Array): boolean {
  return bytes.length >= VIMQ_MAGIC.length && [...VIMQ_MAGIC].every((c, i) => bytes[i] === c.charCodeAt(0));
}

/** Alignment of every tensor in the data section (and of the data section in the file). */
export const BLOB_ALIGN = 64;

export const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

// --- tensors: element types, layouts, sizes ----------------------------------------------------------------

/** How a tensor's bytes are arranged (docs/FORMAT.md). */
export type TensorLayout =
  | 'plain'   // row-major in its logical shape (f32 or i32)
  | 'kn8'     // f32 Linear/conv weight [N, K] stored transposed as [K, roundUp(N, 8)], zero padded
  | 'q8'      // i8 Linear weight [N, K] in panels of 4 outputs x roundUp(K, 16) inputs, 16-byte blocks
  | 'q4g64';  // i4 Linear weight [N, K] in panels of 4 outputs x roundUp(K, 64) inputs, two per byte

/** Element type of a tensor; each layout allows the ones of LAYOUT_DTYPES. */
export type TensorDtype = 'f32' | 'i32' | 'i8' | 'i4';

export const LAYOUT_DTYPES: Record<TensorLayout, readonly TensorDtype[]> = {
  plain: ['f32', 'i32'], kn8: ['f32'], q8: ['i8'], q4g64: ['i4'],
};

/** Inputs per scale group of a 'q4g64' weight. */
export const Q4_GROUP = 64;

/**
 * Bytes of gemm_qs4's scratch for a call of m rows of k inputs, in either build (assembly/gemm_qs4.ts): the
 * portable kernel's unpacked panel with its scales, or the relaxed kernel's activation sums per group.
 */
export function q4ScratchBytes(m: number, k: number): number {
  const kp = alignUp(k, Q4_GROUP), groups = kp / Q4_GROUP;
  return Math.max(8 * kp + 32 * groups, 4 * m * groups);
}

/** Bytes a tensor of this logical shape takes in this layout; -1 for an unknown layout. */
export function layoutBytes(shape: number[], layout: TensorLayout): number {
  const count = shape.reduce((a, b) => a * b, 1);
  const n = shape[0];
  const k = count / n;
  switch (layout) {
    case 'plain': return count * 4;
    case 'kn8': return k * alignUp(n, 8) * 4;
    case 'q8': return alignUp(n, 4) * alignUp(k, 16);
    case 'q4g64': return alignUp(n, 4) * alignUp(k, Q4_GROUP) / 2;
    default: return -1;
  }
}

/** A tensor as the file's table lists it. */
export interface TensorEntry {
  name: string;
  dtype: TensorDtype;
  shape: number[];        // logical shape (PyTorch's)
  layout: TensorLayout;
  offset: number;         // bytes from the data offset, 64-aligned
  bytes: number;
}

/** Sizes hadamard_rows_f32 rotates (and the offline rotations build): 2^k and 12·2^k. */
export function isHadamardSize(n: number): boolean {
  const m = n % 12 === 0 ? n / 12 : n;
  return Number.isInteger(m) && m > 0 && (m & (m - 1)) === 0;
}

// --- quantization: methods and bit widths ------------------------------------------------------------------

export const METHOD_NAMES = ['rtn', 'percentile', 'smoothquant', 'osplus', 'quarot', 'mambaquant'] as const;
export type MethodName = typeof METHOD_NAMES[number];

/** What a bit width means for the codes and their storage. */
export interface BitPlan {
  weightBits: number;
  activationBits: number;
  /** No kernels of its own: narrower codes run on the int8 kernels, for accuracy comparison only. */
  simulated: boolean;
  /** Weights stored as int4 groups ('q4g64') where K allows. */
  int4: boolean;
}

const BIT_PLANS = {
  w8a8: { weightBits: 8, activationBits: 8, simulated: false, int4: false },
  w4a8: { weightBits: 4, activationBits: 8, simulated: false, int4: true },
  w6a6: { weightBits: 6, activationBits: 6, simulated: true, int4: false },
  w4a4: { weightBits: 4, activationBits: 4, simulated: true, int4: true },
} as const satisfies Record<string, BitPlan>;

export type BitWidth = keyof typeof BIT_PLANS;
export const BIT_WIDTHS = Object.keys(BIT_PLANS) as BitWidth[];

export function bitPlan(bits: string): BitPlan {
  if (!Object.hasOwn(BIT_PLANS, bits)) fail('BAD_ARGUMENT', `unknown bit width '${bits}' (${BIT_WIDTHS.join(', ')})`);
  return BIT_PLANS[bits as BitWidth];
}

// --- the metadata ------------------------------------------------------------------------------------------

/** How a quantized file was made (docs/FORMAT.md, docs/QUANTIZATION.md); stored in metadata.quantization. */
export interface QuantizationRecipe {
  method: string;                 // one of METHOD_NAMES
  bits: BitWidth;
  weightBits: number;
  activationBits: number;
  /** w6a6 / w4a4: narrower codes run on the int8 kernels, for accuracy comparison only (no size or speed gain). */
  simulated: boolean;
  weights: { granularity: 'channel' | 'group64'; range: 'minmax' | 'mse' };
  activations: { granularity: 'tensor' | 'token'; dynamic: boolean; range: 'minmax' | 'percentile' | 'mse';
                 percentile?: number };
  /** The function-preserving transforms, in the order applied. */
  transforms: string[];
  calibration: { set: string; size: number; seed: number };
}

/** Everything a model file says about its model except where its tensors lie. */
export interface ModelDescription {
  format: 'vimq';
  config: VimConfig;
  labels: string[];
  preprocess: PreprocessSpec;
  /** The mixer's Linear weights: fp32, or the bit width they were quantized to (QuantizationRecipe.bits). */
  weights: 'f32' | BitWidth;
  /** The post-training quantization recipe; null for an unquantized file. */
  quantization: QuantizationRecipe | null;
  source: ModelSource;
}

/** The variant flags a checkpoint's shapes cannot reveal (docs/MODEL.md §1, "What a checkpoint tells"). */
export interface ModelVariant {
  /** Where the class token sits in the sequence, or none (mean pooling). */
  classToken: 'middle' | 'head' | 'none';
  /** `if_devide_out`: the two scan directions' outputs averaged ('halved') or added ('summed'). */
  directions: 'halved' | 'summed';
}

/** The checkpoint a model was converted from. The optional fields are absent in files of older versions. */
export interface ModelSource {
  file: string;
  format: 'pth' | 'safetensors';
  /** Where in the checkpoint the weights were, e.g. "checkpoint['model_ema']". */
  weights?: string;
  /** The DDP / torch.compile prefix taken off every key ('module.', '_orig_mod.'), when there was one. */
  strippedPrefix?: string;
  /** The variant, and what said so: a convert option, the checkpoint's training args, or an assumption. */
  variant?: ModelVariant & { basis: string };
}

/** A .vimq file's metadata: the description and the tensor table. */
export interface ModelMetadata extends ModelDescription {
  tensors: TensorEntry[];
}

/** A model ready to be written (writeVimq) or run (model-file.ts): its metadata and data section. */
export interface PackedModel {
  metadata: ModelMetadata;
  /** The tensors at their table's offsets: the bytes the runtime copies into its weight arena. */
  data: Uint8Array;
}

/**
 * What the kernels can run: the scan keeps N = 16 states in four 4-lane vectors, and the SIMD kernels walk
 * D and E in 4-lane vectors. Every converter and the loader run this one check, so a file is never written
 * that the runtime then refuses.
 */
export function checkKernelLimits(c: VimConfig): void {
  const sizes = { 'embed dim D': c.embedDim, depth: c.depth, 'inner dim E': c.innerDim, 'state size N': c.dState, 'dt rank R': c.dtRank,
    'conv width K': c.dConv, classes: c.numClasses, 'patch size P': c.patchSize };
  for (const [what, n] of Object.entries(sizes)) {
    if (!(n >= 1)) fail('BAD_MODEL', `${what} is ${n}: the model has zero-size tensors, which no kernel can run`);
  }
  if (c.dState !== 16) fail('BAD_MODEL', `d_state ${c.dState} is not supported (the scan kernel needs 16)`);
  if (c.embedDim % 4 || c.innerDim % 4) {
    fail('BAD_MODEL', `embed dim ${c.embedDim} and inner dim ${c.innerDim} must be multiples of 4`);
  }
}

// --- which tensors a config needs, under which names --------------------------------------------------------

/** Module prefix of block i's mixer, and the suffixes of the two scan directions (forward, backward). */
export const mixerPrefix = (i: number): string => `layers.${i}.mixer.`;
export const DIRECTIONS = ['', '_b'] as const;

export interface RuntimeTensor {
  name: string;
  shape: number[];
  dtype: TensorDtype;
  layout: TensorLayout;
}

/** How a Linear weight is stored: fp32 for gemm_f32_4x8, or int8 / int4 panels for gemm_qs8_4x4_dot16 / gemm_qs4. */
export type WeightLayout = 'kn8' | 'q8' | 'q4g64';

/** A Linear layer of the mixer that may run on the integer kernels: `name`.weight is [n, k]. */
export interface QuantizableLinear {
  name: string;
  n: number;
  k: number;
}

/** Every quantizable Linear, block by block (patch embedding and head stay fp32: 1 input channel, 10 classes). */
export function quantizableLinears(cfg: VimConfig): QuantizableLinear[] {
  const { embedDim: D, innerDim: E, dState: N, dtRank: R } = cfg;
  const list: QuantizableLinear[] = [];
  for (let i = 0; i < cfg.depth; i++) {
    const p = mixerPrefix(i);
    list.push({ name: `${p}in_proj`, n: 2 * E, k: D });
    for (const s of DIRECTIONS) {
      list.push({ name: `${p}x_proj${s}`, n: R + 2 * N, k: E }, { name: `${p}dt_proj${s}`, n: E, k: R });
    }
    list.push({ name: `${p}out_proj`, n: D, k: E });
  }
  return list;
}

/**
 * Optional fp32 tensors added by the quantization transforms (per block; names relative to `layers.{i}.mixer.`):
 * - `in_proj.input_shift` [D]: OS+ channel shift, subtracted from the in_proj input (compensated by in_proj.bias)
 * - `in_proj.bias` [2E]: the compensation W·shift
 * - `x_proj{,_b}.bias` [R + 2N]: shifts of the dt bottleneck (OS+, MambaQuant)
 * - `gate_scale` [E]: the scaled SiLU of MambaQuant's smooth-fused rotation, gate = z·sigmoid(s·z)
 * - `out_proj.input_signs` [E]: online Hadamard rotation of the out_proj input, x <- (x ⊙ signs)·H/√E
 */
export type Extra = 'in_proj.input_shift' | 'in_proj.bias' | 'x_proj.bias' | 'gate_scale' | 'out_proj.input_signs';

const EXTRAS: Extra[] = ['in_proj.input_shift', 'in_proj.bias', 'x_proj.bias', 'gate_scale', 'out_proj.input_signs'];

/** Which optional variants a file uses: the loader reads it off the tensor table, the writers choose it. */
export interface TensorPlan {
  /** Stored layout per quantizable Linear name; absent = 'kn8'. */
  weights: ReadonlyMap<string, WeightLayout>;
  /** Input quantizers of the quantized Linears: static per tensor, static per token, or dynamic per token. */
  inputRanges: 'tensor' | 'token' | 'dynamic';
  extras: ReadonlySet<Extra>;
}

export const FP32_PLAN: TensorPlan = { weights: new Map(), inputRanges: 'tensor', extras: new Set() };

const f32 = (name: string, shape: number[], layout: TensorLayout = 'plain'): RuntimeTensor =>
  ({ name, shape, dtype: 'f32', layout });

/** The weight of one Linear and, when quantized, its scales, sums and input quantizer. */
function linearTensors(cfg: VimConfig, plan: TensorPlan, l: QuantizableLinear): RuntimeTensor[] {
  const layout = plan.weights.get(l.name) ?? 'kn8';
  const w = `${l.name}.weight`;
  if (layout === 'kn8') return [f32(w, [l.n, l.k], 'kn8')];
  const perOutput = layout === 'q8' ? [l.n] : [l.n, Math.ceil(l.k / Q4_GROUP)];
  const list: RuntimeTensor[] = [
    { name: w, shape: [l.n, l.k], dtype: layout === 'q8' ? 'i8' : 'i4', layout },
    f32(`${l.name}.weight_scale`, perOutput),
    { name: `${l.name}.weight_sum`, shape: perOutput, dtype: 'i32', layout: 'plain' },
  ];
  if (plan.inputRanges !== 'dynamic') {
    const ranges = plan.inputRanges === 'token' ? [cfg.numTokens] : [1];
    list.push(f32(`${l.name}.input_scale`, ranges),
      { name: `${l.name}.input_zero`, shape: ranges, dtype: 'i32', layout: 'plain' });
  }
  return list;
}

/** The tensors the runtime reads, in arena order: the writers and the loader all derive from this one list. */
export function runtimeTensors(cfg: VimConfig, plan: TensorPlan = FP32_PLAN): RuntimeTensor[] {
  const { embedDim: D, innerDim: E, dState: N, dtRank: R, dConv: K } = cfg;
  const P = cfg.patchSize;
  const has = (e: Extra) => plan.extras.has(e);
  const linear = (name: string, n: number, k: number) => linearTensors(cfg, plan, { name, n, k });
  const list: RuntimeTensor[] = [
    f32('patch_embed.proj.weight', [D, cfg.channels, P, P], 'kn8'),
    f32('patch_embed.proj.bias', [D]),
    f32('cls_token', [1, 1, D]),
    f32('pos_embed', [1, cfg.numTokens, D]),
  ];
  for (let i = 0; i < cfg.depth; i++) {
    const m = mixerPrefix(i);
    list.push(f32(`layers.${i}.norm.weight`, [D]));
    if (has('in_proj.input_shift')) list.push(f32(`${m}in_proj.input_shift`, [D]));
    list.push(...linear(`${m}in_proj`, 2 * E, D));
    if (has('in_proj.bias')) list.push(f32(`${m}in_proj.bias`, [2 * E]));
    for (const s of DIRECTIONS) {
      list.push(
        f32(`${m}conv1d${s}.weight`, [K, E]),
        f32(`${m}conv1d${s}.bias`, [E]),
        ...linear(`${m}x_proj${s}`, R + 2 * N, E),
      );
      if (has('x_proj.bias')) list.push(f32(`${m}x_proj${s}.bias`, [R + 2 * N]));
      list.push(
        ...linear(`${m}dt_proj${s}`, E, R),
        f32(`${m}dt_proj${s}.bias`, [E]),
        f32(`${m}A${s}`, [E, N]),
        f32(`${m}D${s}`, [E]),
      );
    }
    if (has('gate_scale')) list.push(f32(`${m}gate_scale`, [E]));
    if (has('out_proj.input_signs')) list.push(f32(`${m}out_proj.input_signs`, [E]));
    list.push(...linear(`${m}out_proj`, D, E));
  }
  list.push(
    f32('norm_f.weight', [D]),
    f32('head.weight', [cfg.numClasses, D], 'kn8'),
    f32('head.bias', [cfg.numClasses]),
  );
  return list;
}

/** The plan a tensor table was written with (the loader then checks the table against it, entry by entry). */
export function planOf(cfg: VimConfig, tensors: TensorEntry[]): TensorPlan {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const weights = new Map<string, WeightLayout>();
  for (const l of quantizableLinears(cfg)) {
    const layout = byName.get(`${l.name}.weight`)?.layout;
    if (layout === 'q8' || layout === 'q4g64') weights.set(l.name, layout);
  }
  const quantized = [...weights.keys()];
  const scales = quantized.length ? byName.get(`${quantized[0]}.input_scale`) : undefined;
  const inputRanges = quantized.length === 0 || scales?.shape[0] === 1 ? 'tensor' : scales ? 'token' : 'dynamic';
  // An extra is in use when block 0 has it; the check against the full list then requires it everywhere.
  const extras = new Set(EXTRAS.filter((e) => byName.has(`${mixerPrefix(0)}${e}`)));
  return { weights, inputRanges, extras };
}

/** The file's tensor table must hold exactly what the config and plan need, in the stored layouts. */
export function checkTensorsMatch(cfg: VimConfig, tensors: TensorEntry[], plan: TensorPlan): void {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const needed = runtimeTensors(cfg, plan);
  for (const t of needed) {
    const got = byName.get(t.name) ?? fail('BAD_MODEL_FILE', `tensor ${t.name} is missing`);
    if (got.layout !== t.layout || got.dtype !== t.dtype || got.shape.join() !== t.shape.join()) {
      fail('BAD_MODEL_FILE', `tensor ${t.name} is [${got.shape}] (${got.layout}, ${got.dtype}); ` +
        `the config needs [${t.shape}] (${t.layout}, ${t.dtype})`);
    }
  }
  if (tensors.length !== needed.length) {
    const extra = tensors.filter((t) => !needed.some((n) => n.name === t.name)).map((t) => t.name);
    fail('BAD_MODEL_FILE', `tensors not used by the config: ${extra.slice(0, 5).join(', ')}`);
  }
}

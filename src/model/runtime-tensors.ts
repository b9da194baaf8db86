/**
 * The tensors the runtime reads, in arena order: their names, logical shapes, element types and layouts.
 * Both the writers (checkpoint -> .vimq, quantizer -> .vimq) and the loader (.vimq -> kernels) derive from
 * this one list.
 *
 * Differences from the checkpoint (docs/FORMAT.md):
 * - Linear and patch-conv weights are stored transposed and padded ('kn8') for the fp32 GEMM kernel, or, for
 *   the Linear layers of the mixer in a quantized file, as int8 ('q8') or int4 ('q4g64') panels for the
 *   integer kernels, with their scales, sums and input quantizer.
 * - conv1d weights [E, 1, K] are stored as their transpose [K, E] (logical shape [K, E], 'plain').
 * - A_log [E, N] is stored as A = -exp(A_log) under the name `A` (`A_b`), as the scan uses it.
 * - Quantization transforms may add the optional fp32 tensors of `Extra`.
 */
import type { VimConfig } from './config.js';
import type { TensorDtype, TensorEntry, TensorLayout } from '../formats/vimq.js';
import { fail } from '../errors.js';

export interface RuntimeTensor {
  name: string;
  shape: number[];
  dtype: TensorDtype;
  layout: TensorLayout;
}

/** How a Linear weight is stored: fp32 for gemm_f32_4x8, or int8 / int4 panels for gemm_qs8_4x4_dot16 / gemm_qs4. */
export type WeightLayout = 'kn8' | 'q8' | 'q4g64';

/** Inputs per scale group of a 'q4g64' weight. */
export const Q4_GROUP = 64;

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
    const p = `layers.${i}.mixer.`;
    list.push({ name: `${p}in_proj`, n: 2 * E, k: D });
    for (const s of ['', '_b']) {
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
    const p = `layers.${i}.`;
    list.push(f32(`${p}norm.weight`, [D]));
    if (has('in_proj.input_shift')) list.push(f32(`${p}mixer.in_proj.input_shift`, [D]));
    list.push(...linear(`${p}mixer.in_proj`, 2 * E, D));
    if (has('in_proj.bias')) list.push(f32(`${p}mixer.in_proj.bias`, [2 * E]));
    for (const s of ['', '_b']) {
      list.push(
        f32(`${p}mixer.conv1d${s}.weight`, [K, E]),
        f32(`${p}mixer.conv1d${s}.bias`, [E]),
        ...linear(`${p}mixer.x_proj${s}`, R + 2 * N, E),
      );
      if (has('x_proj.bias')) list.push(f32(`${p}mixer.x_proj${s}.bias`, [R + 2 * N]));
      list.push(
        ...linear(`${p}mixer.dt_proj${s}`, E, R),
        f32(`${p}mixer.dt_proj${s}.bias`, [E]),
        f32(`${p}mixer.A${s}`, [E, N]),
        f32(`${p}mixer.D${s}`, [E]),
      );
    }
    if (has('gate_scale')) list.push(f32(`${p}mixer.gate_scale`, [E]));
    if (has('out_proj.input_signs')) list.push(f32(`${p}mixer.out_proj.input_signs`, [E]));
    list.push(...linear(`${p}mixer.out_proj`, D, E));
  }
  list.push(
    f32('norm_f.weight', [D]),
    f32('head.weight', [cfg.numClasses, D], 'kn8'),
    f32('head.bias', [cfg.numClasses]),
  );
  return list;
}

const EXTRAS: Extra[] = ['in_proj.input_shift', 'in_proj.bias', 'x_proj.bias', 'gate_scale', 'out_proj.input_signs'];

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
  const extras = new Set(EXTRAS.filter((e) => byName.has(`layers.0.mixer.${e}`)));
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

/**
 * A loaded Vim classifier: weights copied into the kernels' memory once, every activation buffer planned
 * once (no allocation per image), and forward() walking spec §2 step by step.
 */
import type { VimConfig } from './config.js';
import { ensureMemory, type Kernels } from './kernels.js';
import { runtimeTensors } from './runtime-tensors.js';
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

/** Observes intermediate activations (tests compare them with the PyTorch reference). */
export type Tap = (name: string, values: Float32Array) => void;

export class VimModel {
  readonly config: VimConfig;
  private readonly k: Kernels;
  private readonly w: Map<string, number>;   // tensor name -> byte offset in memory
  private readonly s: RunState;

  constructor(config: VimConfig, kernels: Kernels, tensors: TensorEntry[], data: Uint8Array) {
    checkSupported(config);
    this.config = config;
    this.k = kernels;
    const base = kernels.heap_base();
    this.w = new Map(tensors.map((t) => [t.name, base + t.offset]));
    checkTensorsMatchConfig(config, tensors);
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
      this.mixer(i);
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
  private mixer(i: number): void {
    const { embedDim: D, innerDim: E, numTokens: L } = this.config;
    const k = this.k, s = this.s, p = `layers.${i}.mixer.`;
    k.gemm_f32(s.normed, D, this.weight(`${p}in_proj.weight`), 0, s.xz, 2 * E, L, D, 2 * E);
    this.branch(p, '', s.yf, false);
    this.branch(p, '_b', s.yb, true);
    k.combine_gate_f32(s.yf, s.yb, s.xz + E * 4, 2 * E, L, E);
    k.gemm_f32(s.yf, E, this.weight(`${p}out_proj.weight`), 0, s.h, D, L, E, D);
  }

  /** One direction of §2.3 Branch: conv + SiLU, x_proj, dt_proj + softplus, selective scan. */
  private branch(p: string, dir: '' | '_b', out: number, reverse: boolean): void {
    const { innerDim: E, dState: N, dtRank: R, dConv: K, numTokens: L } = this.config;
    const k = this.k, s = this.s;
    const w = (module: string, field = '') => this.weight(`${p}${module}${dir}${field}`);
    const xdWidth = R + 2 * N;
    k.conv1d_silu_f32(s.xz, 2 * E, w('conv1d', '.weight'), w('conv1d', '.bias'), s.u, L, E, K, reverse ? 1 : 0);
    k.gemm_f32(s.u, E, w('x_proj', '.weight'), 0, s.xd, xdWidth, L, E, xdWidth);
    k.gemm_f32(s.xd, xdWidth, w('dt_proj', '.weight'), w('dt_proj', '.bias'), s.delta, E, L, R, E);
    k.softplus_inplace_f32(s.delta, L * E);
    k.selective_scan_f32(s.u, s.delta, w('A'), s.xd + R * 4, xdWidth, w('D'), out, L, E, reverse ? 1 : 0);
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

/** The file's tensor table must hold exactly what the config needs, in the layouts the kernels read. */
function checkTensorsMatchConfig(c: VimConfig, tensors: TensorEntry[]): void {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const needed = runtimeTensors(c);
  for (const t of needed) {
    const got = byName.get(t.name) ?? fail('BAD_MODEL_FILE', `tensor ${t.name} is missing`);
    if (got.layout !== t.layout || got.shape.join() !== t.shape.join()) {
      fail('BAD_MODEL_FILE', `tensor ${t.name} is [${got.shape}] (${got.layout}); the config needs [${t.shape}] (${t.layout})`);
    }
  }
  if (tensors.length !== needed.length) {
    const extra = tensors.filter((t) => !needed.some((n) => n.name === t.name)).map((t) => t.name);
    fail('BAD_MODEL_FILE', `tensors not used by the config: ${extra.slice(0, 5).join(', ')}`);
  }
}

/**
 * A VimConfig read off a state_dict's tensor shapes (MODEL.md §1 and §3), followed by a check of every tensor
 * against the key list and shapes that config implies, so a wrong or damaged checkpoint fails here with
 * one message instead of deep inside packing or inference.
 */
import { fail } from '../errors.js';
import { numel, shapeString, type StateDict } from '../tensor.js';
import type { VimConfig } from './config.js';
import { mixerPrefix } from './contract.js';

export interface InferConfigOptions {
  /**
   * Patch stride; by default the patch size, or half of it where only that gives a 224-pixel input. Another
   * stride needs `imageSize` as well, to confirm the input size it implies.
   */
  stride?: number;
  /** Input side; sets the stride when `stride` is not given. */
  imageSize?: number;
}

const NORM_EPS = 1e-5;
/** Every released Vim model takes 224×224 input; the stride-8 fine-tunes are recognised by that. */
const STANDARD_IMAGE_SIZE = 224;
const MAX_LISTED_PROBLEMS = 10;

/** Every state_dict key of a Vim model with its shape, in the order state_dict() writes them (MODEL.md §3). */
export function expectedShapes(config: VimConfig): Map<string, number[]> {
  const { embedDim: D, innerDim: E, dState: N, dtRank: R, dConv: K, patchSize: P } = config;
  const shapes = new Map<string, number[]>([
    ['cls_token', [1, 1, D]],
    ['pos_embed', [1, config.numTokens, D]],
    ['patch_embed.proj.weight', [D, config.channels, P, P]],
    ['patch_embed.proj.bias', [D]],
    ['head.weight', [config.numClasses, D]],
    ['head.bias', [config.numClasses]],
  ]);
  for (let i = 0; i < config.depth; i++) {
    for (const [suffix, shape] of [
      ['A_log', [E, N]], ['D', [E]], ['A_b_log', [E, N]], ['D_b', [E]],
      ['in_proj.weight', [2 * E, D]],
      ['conv1d.weight', [E, 1, K]], ['conv1d.bias', [E]],
      ['x_proj.weight', [R + 2 * N, E]],
      ['dt_proj.weight', [E, R]], ['dt_proj.bias', [E]],
      ['conv1d_b.weight', [E, 1, K]], ['conv1d_b.bias', [E]],
      ['x_proj_b.weight', [R + 2 * N, E]],
      ['dt_proj_b.weight', [E, R]], ['dt_proj_b.bias', [E]],
      ['out_proj.weight', [D, E]],
    ] as const) {
      shapes.set(`${mixerPrefix(i)}${suffix}`, [...shape]);
    }
    shapes.set(`layers.${i}.norm.weight`, [D]);
  }
  shapes.set('norm_f.weight', [D]);
  return shapes;
}

export function inferConfig(sd: StateDict, options: InferConfigOptions = {}): VimConfig {
  const problems: string[] = [];
  const dims = (key: string, rank: number): number[] => {
    const tensor = sd.get(key);
    if (!tensor) problems.push(`missing ${key}`);
    else if (tensor.shape.length !== rank) problems.push(`${key} is ${shapeString(tensor.shape)}, expected ${rank} dims`);
    else return tensor.shape;
    return new Array<number>(rank).fill(0);
  };
  const [D, C, P, P2] = dims('patch_embed.proj.weight', 4);
  const [, L] = dims('pos_embed', 3);
  const [numClasses] = dims('head.weight', 2);
  const [twoE] = dims('layers.0.mixer.in_proj.weight', 2);
  const [, N] = dims('layers.0.mixer.A_log', 2);
  const [, R] = dims('layers.0.mixer.dt_proj.weight', 2);
  const [, , K] = dims('layers.0.mixer.conv1d.weight', 3);
  if (P !== P2) problems.push(`patch_embed.proj.weight has a ${P}×${P2} kernel; patches are square`);
  if (sd.get('patch_embed.proj.weight')?.shape.length === 4 && C !== 1 && C !== 3) {
    problems.push(`patch_embed.proj.weight takes ${C} input channels; Vim models take 3 (RGB) or 1 (greyscale)`);
  }
  if (twoE % 2 !== 0) problems.push(`layers.0.mixer.in_proj.weight has ${twoE} rows; it must be 2 × inner dim`);
  if (problems.length > 0) fail('BAD_MODEL', `cannot infer the model shape: ${listed(problems)}`);

  const depth = layerCount(sd);
  const gridSize = Math.round(Math.sqrt(L - 1));
  if (L < 2 || gridSize * gridSize !== L - 1) {
    const noClassToken = Number.isInteger(Math.sqrt(L)) && !sd.has('cls_token')
      ? ' (a square number and no cls_token: a model without a class token, which the runtime does not run)' : '';
    fail('BAD_MODEL', `pos_embed has ${L} tokens${noClassToken}; L - 1 patches must form a square grid (cls token + G×G)`);
  }
  const { stride, imageSize } = chooseStride(P, gridSize, options);
  const config: VimConfig = {
    embedDim: D, depth, innerDim: twoE / 2, dState: N, dtRank: R, dConv: K, patchSize: P, stride, imageSize,
    channels: C, numClasses, gridSize, numTokens: L, clsIndex: Math.floor((L - 1) / 2), normEps: NORM_EPS,
  };
  checkTensors(sd, config);
  return config;
}

/** Highest `layers.{i}` index + 1; bounded by the key count so a bogus index cannot drive a huge loop. */
function layerCount(sd: StateDict): number {
  let highest = -1;
  for (const key of sd.keys()) {
    const match = /^layers\.(\d+)\./.exec(key);
    if (match) highest = Math.max(highest, Number(match[1]));
  }
  if (highest > sd.size) fail('BAD_MODEL', `layers.${highest} is listed, but the state_dict has only ${sd.size} tensors`);
  return highest + 1;
}

/**
 * The stride and input side. Without options: S = P, or P/2 where only that gives a 224-pixel input. A stride
 * alone must be that one: any other stride is consistent with pos_embed too, but at another input size, which
 * the caller must then state (a wrong stride would otherwise silently build a model for another image size).
 */
function chooseStride(patch: number, grid: number, options: InferConfigOptions): { stride: number; imageSize: number } {
  const imageAt = (stride: number) => (grid - 1) * stride + patch;
  const { stride, imageSize } = options;
  for (const [label, value] of [['stride', stride], ['imageSize', imageSize]] as const) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
      fail('BAD_ARGUMENT', `${label} must be a positive integer, got ${value}`);
    }
  }
  const half = patch / 2;
  const longSequence = imageAt(patch) !== STANDARD_IMAGE_SIZE && Number.isInteger(half) && imageAt(half) === STANDARD_IMAGE_SIZE;
  const natural = longSequence ? half : patch;
  if (stride !== undefined) {
    if (imageSize !== undefined && imageAt(stride) !== imageSize) {
      fail('BAD_ARGUMENT', `stride ${stride} and image size ${imageSize} disagree: a ${grid}×${grid} grid of `
        + `${patch}-pixel patches at stride ${stride} covers ${imageAt(stride)} pixels`);
    }
    if (imageSize === undefined && stride !== natural) {
      fail('BAD_ARGUMENT', `stride ${stride} does not fit pos_embed's ${grid}×${grid} grid of ${patch}-pixel patches: `
        + `they cover ${imageAt(natural)} pixels at the default stride ${natural}, ${imageAt(stride)} at stride ${stride}; `
        + `give the image size too (convert --crop ${imageAt(stride)}) if a ${imageAt(stride)}-pixel input is meant`);
    }
    return { stride, imageSize: imageAt(stride) };
  }
  if (imageSize !== undefined) {
    const derived = grid === 1 ? patch : (imageSize - patch) / (grid - 1);
    if (!Number.isInteger(derived) || derived <= 0 || imageAt(derived) !== imageSize) {
      fail('BAD_ARGUMENT', `image size ${imageSize} fits no stride for a ${grid}×${grid} grid of ${patch}-pixel patches`);
    }
    return { stride: derived, imageSize };
  }
  return { stride: natural, imageSize: imageAt(natural) };
}

/** Missing, unexpected and mis-shaped tensors in one error; then NaN/Inf values, also in one error. */
function checkTensors(sd: StateDict, config: VimConfig): void {
  const expected = expectedShapes(config);
  const problems: string[] = [];
  for (const [key, shape] of expected) {
    const tensor = sd.get(key);
    if (!tensor) {
      problems.push(`missing ${key}`);
    } else if (shapeString(tensor.shape) !== shapeString(shape)) {
      problems.push(`${key} is ${shapeString(tensor.shape)}, expected ${shapeString(shape)}`);
    } else if (tensor.data.length !== numel(shape)) {
      problems.push(`${key} holds ${tensor.data.length} values for shape ${shapeString(shape)}`);
    }
  }
  for (const key of sd.keys()) if (!expected.has(key)) problems.push(`unexpected ${key}`);
  if (problems.length > 0) {
    fail('BAD_MODEL', `state_dict does not match a Vim model with ${describe(config)}: ${listed(problems)}`);
  }

  const nonFinite: string[] = [];
  for (const key of expected.keys()) {
    const data = sd.get(key)!.data;
    const at = data.findIndex((v) => !Number.isFinite(v));
    if (at >= 0) nonFinite.push(`${key} (${data[at]} at index ${at})`);
  }
  if (nonFinite.length > 0) fail('BAD_MODEL', `non-finite weights: ${listed(nonFinite)}`);
}

function describe(c: VimConfig): string {
  return `D=${c.embedDim}, depth ${c.depth}, E=${c.innerDim}, N=${c.dState}, R=${c.dtRank}, K=${c.dConv}, `
    + `L=${c.numTokens}, ${c.numClasses} classes`;
}

function listed(items: string[]): string {
  const shown = items.slice(0, MAX_LISTED_PROBLEMS).join('; ');
  return items.length > MAX_LISTED_PROBLEMS ? `${shown}; and ${items.length - MAX_LISTED_PROBLEMS} more` : shown;
}

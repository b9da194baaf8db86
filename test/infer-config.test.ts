// inferConfig on Vim-shaped state_dicts (built here from MODEL.md §3's table, zeros of the real sizes) and on a
// tiny real torch.save checkpoint; expectedShapes against the parameter counts in MODEL.md §1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { expectedShapes, inferConfig } from '../src/model/infer-config.js';
import type { VimConfig } from '../src/model/config.js';
import { readCheckpoint } from '../src/formats/checkpoint.js';
import { numel, type StateDict } from '../src/tensor.js';
import { rejects } from './helpers/rejects.js';

/** MODEL.md §3, general column: the keys and shapes of a Vim state_dict, written out independently of the code. */
function vimStateDict(D: number, depth: number, L: number, channels = 3, classes = 1000): StateDict {
  const E = 2 * D, N = 16, K = 4, R = Math.ceil(D / 16);
  const shapes: [string, number[]][] = [
    ['cls_token', [1, 1, D]], ['pos_embed', [1, L, D]], ['patch_embed.proj.weight', [D, channels, 16, 16]],
    ['patch_embed.proj.bias', [D]], ['head.weight', [classes, D]], ['head.bias', [classes]],
  ];
  for (let i = 0; i < depth; i++) {
    const m = `layers.${i}.mixer.`;
    shapes.push(
      [`${m}A_log`, [E, N]], [`${m}D`, [E]], [`${m}A_b_log`, [E, N]], [`${m}D_b`, [E]], [`${m}in_proj.weight`, [2 * E, D]],
      [`${m}conv1d.weight`, [E, 1, K]], [`${m}conv1d.bias`, [E]], [`${m}x_proj.weight`, [R + 2 * N, E]],
      [`${m}dt_proj.weight`, [E, R]], [`${m}dt_proj.bias`, [E]], [`${m}conv1d_b.weight`, [E, 1, K]], [`${m}conv1d_b.bias`, [E]],
      [`${m}x_proj_b.weight`, [R + 2 * N, E]], [`${m}dt_proj_b.weight`, [E, R]], [`${m}dt_proj_b.bias`, [E]],
      [`${m}out_proj.weight`, [D, E]], [`layers.${i}.norm.weight`, [D]],
    );
  }
  shapes.push(['norm_f.weight', [D]]);
  return new Map(shapes.map(([key, shape]) => [key, { shape, data: new Float32Array(numel(shape)) }]));
}

const parameterCount = (config: VimConfig) => [...expectedShapes(config).values()].reduce((n, s) => n + numel(s), 0);

const VIM_TI: VimConfig = {
  embedDim: 192, depth: 24, innerDim: 384, dState: 16, dtRank: 12, dConv: 4, patchSize: 16, stride: 16, imageSize: 224,
  channels: 3, numClasses: 1000, gridSize: 14, numTokens: 197, clsIndex: 98, normEps: 1e-5,
};
const tiny = vimStateDict(192, 24, 197);

test('Vim-Ti: every field from the shapes; 415 keys, 7,148,008 parameters', () => {
  const config = inferConfig(tiny);
  assert.equal(config, VIM_TI);
  assert.is(expectedShapes(config).size, 415);
  assert.equal([...expectedShapes(config).keys()], [...tiny.keys()], 'state_dict() order');
  assert.is(parameterCount(config), 7_148_008);
});

test('Vim-Ti† (730 tokens) is recognised as stride 8 at 224 pixels', () => {
  const config = inferConfig(vimStateDict(192, 24, 730));
  assert.equal(config, { ...VIM_TI, stride: 8, gridSize: 27, numTokens: 730, clsIndex: 364 });
  assert.is(parameterCount(config), 7_250_344);
});

test('expectedShapes reproduces the parameter counts of Vim-S, Vim-S†, Vim-B and Vim-B† (MODEL.md §1)', () => {
  const at = (D: number, long: boolean): VimConfig => ({
    ...VIM_TI, embedDim: D, innerDim: 2 * D, dtRank: Math.ceil(D / 16),
    ...(long ? { stride: 8, gridSize: 27, numTokens: 730, clsIndex: 364 } : {}),
  });
  assert.equal([at(384, false), at(384, true), at(768, false), at(768, true)].map(parameterCount),
    [25_796_584, 26_001_256, 97_598_440, 98_007_784]);
});

test('a tiny real checkpoint (torch.save with optimizer state and args) gives its config', () => {
  const file = new URL('./fixtures/readers/tiny-vim-training.pth', import.meta.url);
  assert.equal(inferConfig(readCheckpoint(readFileSync(file), 'tiny.pth')), {
    embedDim: 8, depth: 2, innerDim: 16, dState: 4, dtRank: 1, dConv: 4, patchSize: 4, stride: 4, imageSize: 16,
    channels: 3, numClasses: 5, gridSize: 4, numTokens: 17, clsIndex: 8, normEps: 1e-5,
  });
});

test('stride and image size options override the default and must agree; a stride alone must be the default', () => {
  assert.equal(inferConfig(tiny, { stride: 8, imageSize: 120 }), { ...VIM_TI, stride: 8, imageSize: 120 });
  assert.equal(inferConfig(tiny, { imageSize: 120 }), { ...VIM_TI, stride: 8, imageSize: 120 });
  assert.equal(inferConfig(tiny, { stride: 16, imageSize: 224 }), VIM_TI);
  assert.equal(inferConfig(tiny, { stride: 16 }), VIM_TI);
  assert.equal(inferConfig(tiny, { stride: undefined, imageSize: undefined }), VIM_TI);
  assert.is(inferConfig(vimStateDict(192, 1, 730), { stride: 8 }).imageSize, 224);
  assert.is(inferConfig(vimStateDict(192, 1, 730), { stride: 16, imageSize: 432 }).imageSize, 432);
  // A stride alone that is not the default would silently mean another input size: it needs the size too.
  rejects(() => inferConfig(tiny, { stride: 8 }), 'BAD_ARGUMENT', "stride 8 does not fit pos_embed's 14×14 grid of 16-pixel patches",
    'they cover 224 pixels at the default stride 16, 120 at stride 8', 'convert --crop 120');
  rejects(() => inferConfig(vimStateDict(192, 1, 730), { stride: 16 }), 'BAD_ARGUMENT', '224 pixels at the default stride 8, 432 at stride 16');
  rejects(() => inferConfig(tiny, { stride: 8, imageSize: 224 }), 'BAD_ARGUMENT', 'stride 8 and image size 224 disagree', 'covers 120 pixels');
  rejects(() => inferConfig(tiny, { imageSize: 225 }), 'BAD_ARGUMENT', 'image size 225 fits no stride for a 14×14 grid');
  rejects(() => inferConfig(tiny, { stride: 0 }), 'BAD_ARGUMENT', 'stride must be a positive integer, got 0');
  rejects(() => inferConfig(tiny, { imageSize: 2.5 }), 'BAD_ARGUMENT', 'imageSize must be a positive integer');
});

test('greyscale models are accepted; other channel counts are not', () => {
  assert.is(inferConfig(vimStateDict(32, 1, 197, 1)).channels, 1);
  rejects(() => inferConfig(vimStateDict(32, 1, 197, 2)), 'BAD_MODEL', 'takes 2 input channels');
});

test('missing, unexpected and mis-shaped tensors are reported together', () => {
  const sd = new Map(tiny);
  sd.delete('layers.3.mixer.D');
  sd.set('extra.weight', { shape: [1], data: new Float32Array(1) });
  sd.set('norm_f.weight', { shape: [191], data: new Float32Array(191) });
  sd.set('head.bias', { shape: [1000], data: new Float32Array(999) });
  const e = rejects(() => inferConfig(sd), 'BAD_MODEL');
  assert.is(e.message, 'state_dict does not match a Vim model with D=192, depth 24, E=384, N=16, R=12, K=4, L=197, '
    + '1000 classes: head.bias holds 999 values for shape [1000]; missing layers.3.mixer.D; '
    + 'norm_f.weight is [191], expected [192]; unexpected extra.weight');
});

test('long problem lists are cut after 10 with a count of the rest', () => {
  const sd = new Map([...tiny].filter(([key]) => !key.startsWith('layers.5.')));
  const e = rejects(() => inferConfig(sd), 'BAD_MODEL', 'missing layers.5.mixer.A_log', 'and 7 more');
  assert.is(e.message.split('; ').length, 11);
});

test('NaN and Inf weights are named with their index', () => {
  const sd = new Map(tiny);
  const bias = new Float32Array(384);
  bias[5] = NaN;
  sd.set('layers.7.mixer.dt_proj.bias', { shape: [384], data: bias });
  const head = new Float32Array(192_000);
  head[191_999] = -Infinity;
  sd.set('head.weight', { shape: [1000, 192], data: head });
  rejects(() => inferConfig(sd), 'BAD_MODEL',
    'non-finite weights: head.weight (-Infinity at index 191999); layers.7.mixer.dt_proj.bias (NaN at index 5)');
});

test('shapes the config cannot be read from are refused up front', () => {
  const without = (key: string) => new Map([...tiny].filter(([k]) => k !== key));
  rejects(() => inferConfig(without('patch_embed.proj.weight')), 'BAD_MODEL', 'cannot infer the model shape: missing patch_embed.proj.weight');
  rejects(() => inferConfig(without('layers.0.mixer.A_log')), 'BAD_MODEL', 'missing layers.0.mixer.A_log');
  rejects(() => inferConfig(new Map()), 'BAD_MODEL', 'missing patch_embed.proj.weight; missing pos_embed; missing head.weight');
  const sd = new Map(tiny);
  sd.set('layers.0.mixer.conv1d.weight', { shape: [384, 4], data: new Float32Array(1536) });
  rejects(() => inferConfig(sd), 'BAD_MODEL', 'layers.0.mixer.conv1d.weight is [384, 4], expected 3 dims');
  sd.set('patch_embed.proj.weight', { shape: [192, 3, 16, 8], data: new Float32Array(73_728) });
  rejects(() => inferConfig(sd), 'BAD_MODEL', 'has a 16×8 kernel');
  rejects(() => inferConfig(vimStateDict(32, 1, 198)), 'BAD_MODEL', 'pos_embed has 198 tokens; L - 1 patches must form a square grid');
  const bogus = new Map(vimStateDict(32, 1, 197));
  bogus.set('layers.100000.mixer.D', { shape: [64], data: new Float32Array(64) });
  rejects(() => inferConfig(bogus), 'BAD_MODEL', 'layers.100000 is listed, but the state_dict has only 25 tensors');
});

test.run();

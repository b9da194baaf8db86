// Checkpoints in the layouts people have, written by torch.save from one small Vim model
// (tools/make_layout_fixtures.py, generated into test/fixtures/generated/layouts on first use): each gives
// logits bit-identical to those of the plain {'model': state_dict} file (or, for fp16 / bf16, of the same
// rounded values stored in float32: the conversion to float32 is exact). Checkpoints the kernels cannot run
// are refused by `convert` with the reason, so that no file is written that classify would then refuse.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadModel } from '../src/model/model-file.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';
import { convertCheckpoint, type ConvertOptions } from '../src/convert/checkpoint.js';
import { readVimq } from '../src/formats/vimq.js';
import { golden } from './helpers/golden.js';
import { rejects } from './helpers/rejects.js';
import { refused, vimedge } from './helpers/cli.js';
import { bits } from './helpers/readers.js';

const DIR = 'test/fixtures/generated/layouts';
if (!existsSync(`${DIR}/manifest.json`)) {
  const made = spawnSync('/usr/bin/python3', ['tools/make_layout_fixtures.py', DIR], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`tools/make_layout_fixtures.py failed: ${made.stderr}`);
}
const bytes = (file: string) => new Uint8Array(readFileSync(`${DIR}/${file}`));
const wasm = await readKernelWasm();
const input = golden('test/fixtures/small/small')!;
const image = input.f32(input.manifest.inputs[0].file);

async function logits(file: string, options: ConvertOptions = {}): Promise<number[]> {
  const { model } = await loadModel(bytes(file), file, wasm, options);
  return bits(model.forward(image));
}

const plain = await logits('plain.pth');

for (const [file, what, options] of [
  ['ddp.pth', "DDP: every key prefixed 'module.'", {}],
  ['compiled.pth', "torch.compile: a bare state_dict prefixed '_orig_mod.'", {}],
  ['ddp-compiled.pth', "both wrappers: 'module._orig_mod.'", {}],
  ['ddp.safetensors', "safetensors with 'module.' keys", {}],
  ['timm.pth', "timm: {'state_dict', 'epoch', 'arch', 'optimizer', 'version', 'metric', 'state_dict_ema'}", {}],
  ['ema.pth', "Vim training layout, --weights ema: 'model_ema'", { weights: 'ema' }],
] as const) {
  test(`${file} (${what}) gives the plain file's logits`, async () => {
    assert.equal(await logits(file, options), plain);
  });
}

test("EMA weights are chosen only when asked; timm's state_dict_ema too", async () => {
  assert.not.equal(await logits('ema.pth'), plain);
  assert.not.equal(await logits('timm.pth', { weights: 'ema' }), plain);
  const model = await readVimq(await convertCheckpoint(bytes('timm.pth'), 'timm.pth', { weights: 'ema' }));
  assert.is(model.metadata.source.weights, "checkpoint['state_dict_ema']");
});

test('fp16 and bf16 checkpoints give the logits of their values stored in float32', async () => {
  for (const dtype of ['fp16', 'bf16']) {
    const rounded = await logits(`${dtype}-as-f32.pth`);
    assert.equal(await logits(`${dtype}.pth`), rounded, dtype);
    assert.not.equal(rounded, plain, `${dtype} rounding changes the weights`);
  }
});

test('the source record says where the weights were, which prefix was removed and which variant was taken', async () => {
  const { metadata } = await readVimq(await convertCheckpoint(bytes('ddp-compiled.pth'), 'ddp-compiled.pth'));
  assert.equal(metadata.source, {
    file: 'ddp-compiled.pth', format: 'pth', weights: "checkpoint['model']", strippedPrefix: 'module._orig_mod.',
    variant: { classToken: 'middle', directions: 'halved', basis: 'assumed: the checkpoint does not say, and every released Vim model is so' },
  });
  const ema = (await readVimq(await convertCheckpoint(bytes('ema.pth'), 'ema.pth', { weights: 'ema' }))).metadata.source;
  assert.is(ema.weights, "checkpoint['model_ema']");
  assert.is(ema.variant?.basis, "training args: model 'vim_small_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2'");
  const asserted = (await readVimq(await convertCheckpoint(bytes('plain.pth'), 'plain.pth',
    { variant: { classToken: 'middle', directions: 'halved' } }))).metadata.source;
  assert.is(asserted.variant?.basis, 'convert options');
});

test('a missing EMA choice lists what the checkpoint holds', () => {
  rejects(() => convertCheckpoint(bytes('plain.pth'), 'plain.pth', { weights: 'ema' }), 'BAD_CHECKPOINT',
    'plain.pth: no EMA weights (looked for model_ema, state_dict_ema); the checkpoint holds model (a dict)');
  rejects(() => convertCheckpoint(bytes('ddp.safetensors'), 'd.safetensors', { weights: 'ema' }), 'BAD_ARGUMENT',
    'd.safetensors: a .safetensors file holds one set of weights');
});

test('variants the runtime cannot run are refused by name, asserted or read from the training args', async () => {
  await rejects(() => convertCheckpoint(bytes('head-token.pth'), 'h.pth'), 'BAD_MODEL',
    "class token at the head, directions halved model (class token: training args: model 'vim_small_patch16_224_bimambav2_with_cls_token'",
    'the runtime runs only the released variant, class token in the middle');
  await rejects(() => convertCheckpoint(bytes('plain.pth'), 'p.pth', { variant: { directions: 'summed' } }), 'BAD_MODEL',
    'directions summed (if_devide_out=False) model (class token: assumed', 'directions: convert options)');
  await rejects(() => convertCheckpoint(bytes('head-token.pth'), 'h.pth', { variant: { classToken: 'middle' } }), 'BAD_ARGUMENT',
    'the convert options say class token in the middle, the checkpoint\'s training args');
});

for (const [file, reason] of [
  ['limit-dstate8.pth', 'd_state 8 is not supported (the scan kernel needs 16)'],
  ['limit-dim6.pth', 'embed dim 6 and inner dim 12 must be multiples of 4'],
  ['limit-zero-conv1d.pth', 'conv width K is 0: the model has zero-size tensors'],
  ['limit-zero-A_log.pth', 'state size N is 0: the model has zero-size tensors'],
  ['limit-zero-dt_proj.pth', 'dt rank R is 0: the model has zero-size tensors'],
  ['limit-zero-inner.pth', 'inner dim E is 0: the model has zero-size tensors'],
  ['limit-zero-classes.pth', 'classes is 0: the model has zero-size tensors'],
] as const) {
  test(`convert refuses ${file}: ${reason}`, async () => {
    await rejects(() => convertCheckpoint(bytes(file), file), 'BAD_MODEL', reason);
  });
}

test('vimedge convert and inspect show the notes, classify --weights ema reads model_ema, refusals leave no file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vimedge-layouts-'));
  try {
    const out = path.join(dir, 'm.vimq');
    const r = vimedge(['convert', `${DIR}/ddp.pth`, '-o', out]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, "note: key prefix 'module.' removed (DistributedDataParallel / torch.compile wrapper)");
    assert.match(r.stdout, 'variant: class token in the middle, directions halved (assumed');
    const shown = vimedge(['inspect', out]);
    assert.match(shown.stdout, /\n {2}note: {7}key prefix 'module\.' removed/);
    assert.match(shown.stdout, /\n {2}source: {5}ddp\.pth \(pth\), weights from checkpoint\['model'\]/);
    const ema = vimedge(['convert', `${DIR}/ema.pth`, '--weights', 'ema', '--class-token', 'middle', '-o', out]);
    assert.match(ema.stdout, "weights from checkpoint['model_ema']");
    assert.match(ema.stdout, "variant: class token in the middle, directions halved (class token: convert options; directions: training args: model 'vim_small");
    const classified = (...args: string[]) => {
      const c = vimedge(['classify', ...args, '--json', '--logits', '--threads', '1', 'test/fixtures/images/chelsea_451x300.jpg']);
      assert.is(c.code, 0, c.stderr);
      return JSON.parse(c.stdout).logits;
    };
    assert.equal(classified('--model', `${DIR}/ema.pth`, '--weights', 'ema'), classified('--model', `${DIR}/plain.pth`));
    const limit = path.join(dir, 'limit.vimq');
    refused(vimedge(['convert', `${DIR}/limit-zero-conv1d.pth`, '-o', limit]), /conv width K is 0/);
    refused(vimedge(['convert', `${DIR}/plain.pth`, '--class-token', 'head', '-o', limit]), /runtime runs only the released variant/);
    assert.not.ok(existsSync(limit));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

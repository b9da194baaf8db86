// The CLI end to end: convert, inspect, classify against the PyTorch pipeline (PIL + torchvision +
// float64 forward, tools/classify_reference.py), and bad input reported per file without stack traces.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, copyFileSync, readFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { noStackTrace, refused, vimedge } from './helpers/cli.js';
import { relErr } from './helpers/kernels.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'vimedge-cli-'));
const SMALL = 'test/fixtures/small/small';
const IMAGES = 'test/fixtures/images';

const model = path.join(tmp, 'small.vimq');
const labels = path.join(tmp, 'labels.txt');
writeFileSync(labels, Array.from({ length: 10 }, (_, i) => `label ${i}`).join('\n') + '\n');

test('convert + inspect: labels, config and preprocessing are stored and shown', () => {
  const r = vimedge(['convert', `${SMALL}/model.pth`, '-o', model, '--labels', labels]);
  assert.is(r.code, 0, r.stderr);
  const info = vimedge(['inspect', model, '--json']);
  assert.is(info.code, 0, info.stderr);
  const j = JSON.parse(info.stdout);
  assert.is(j.config.numTokens, 17);
  assert.is(j.config.clsIndex, 8);
  assert.is(j.parameters, 53002);
  assert.equal(j.labels.slice(0, 2), ['label 0', 'label 1']);
  assert.equal(j.preprocess, { resize: 73, crop: 64, interpolation: 'bicubic', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channels: 3 });
});

test('classify --json --logits equals the PyTorch pipeline on PNG files (rel err <= 1e-4, same top-1)', () => {
  // PNG decoding is exact on both sides and the resize is PIL-exact, so the only difference left is the
  // fp32 forward pass: the same 1e-4 bound as test/forward.test.ts.
  const pngs = readdirSync(IMAGES).filter((f) => f.endsWith('.png')).map((f) => path.join(IMAGES, f));
  assert.ok(pngs.length >= 4);
  const ours = vimedge(['classify', '--model', model, '--json', '--logits', ...pngs]);
  assert.is(ours.code, 0, ours.stderr);
  const spec = JSON.parse(vimedge(['inspect', model, '--json']).stdout).preprocess;
  const ref = spawnSync('/usr/bin/python3', ['tools/classify_reference.py', `${SMALL}/model.pth`,
    JSON.stringify({ ...spec, stride: 16 }), ...pngs], { encoding: 'utf8' });
  assert.is(ref.status, 0, ref.stderr);
  const want = ref.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const got = ours.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.is(got.length, pngs.length);
  got.forEach((g, i) => {
    assert.is(g.file, want[i].file);
    assert.ok(relErr(g.logits, want[i].logits) <= 1e-4, `${g.file}: rel err ${relErr(g.logits, want[i].logits)}`);
    const argmax = want[i].logits.indexOf(Math.max(...want[i].logits));
    assert.is(g.top[0].index, argmax);
    assert.is(g.top[0].label, `label ${argmax}`);
    assert.is(g.top.length, 5);
  });
});

test('a folder with bad files: each reported by name, the rest classified, exit code 1', () => {
  const dir = path.join(tmp, 'mixed');
  mkdirSync(dir);
  copyFileSync(`${IMAGES}/motorcycle_tiny_50x40.png`, path.join(dir, 'a-good.png'));
  writeFileSync(path.join(dir, 'b-empty.png'), '');
  writeFileSync(path.join(dir, 'c-text.jpg'), 'this is not an image');
  writeFileSync(path.join(dir, 'd-truncated.png'), readFileSync(`${IMAGES}/motorcycle_tiny_50x40.png`).subarray(0, 100));
  const r = vimedge(['classify', '--model', model, dir, path.join(tmp, 'missing.png')]);
  assert.is(r.code, 1);
  noStackTrace(r.stderr);
  assert.match(r.stdout, /a-good\.png: label \d \(0\.\d{4}\)/);
  for (const bad of ['b-empty.png', 'c-text.jpg', 'd-truncated.png', 'missing.png']) assert.match(r.stderr, new RegExp(`${bad}: `));
  assert.match(r.stderr, /4 of 5 images could not be classified/);
});

test('start-up: --help loads none of what the verbs run, classify of a PNG neither vega, sharp nor the quantizer', () => {
  const trace = path.join(tmp, 'imports.txt');
  const imports = (...args: string[]) => {
    writeFileSync(trace, '');
    const r = vimedge(args, { preloads: ['test/helpers/trace-imports.mjs'], env: { ...process.env, TRACE_IMPORTS: trace } });
    assert.is(r.code, 0, r.stderr);
    return readFileSync(trace, 'utf8');
  };
  const help = imports('--help');
  assert.match(help, /\/src\/cli\/quantize\.ts/);
  assert.not.match(help, /\/node_modules\/(sharp|vega|cli-progress)|\/src\/(model\/(?!labels\.ts|contract\.ts)|quant\/(?!recipe\.ts)|convert\/|report\/|datasets\/|eval\/)/);
  const classify = imports('classify', '--model', model, `${IMAGES}/motorcycle_tiny_50x40.png`);
  assert.match(classify, /\/src\/model\/vim-model\.ts/);
  // sharp is loaded on the first decode it is needed for: a PNG is decoded by the shared decoder.
  assert.not.match(classify, /\/node_modules\/(vega|sharp)\/|\/src\/(quant\/(?!recipe\.ts)|eval|report)/);
});

test('bad models and flags: one clear line, exit 1 for bad input and 2 for misuse, no stack trace', () => {
  const img = `${IMAGES}/motorcycle_tiny_50x40.png`;
  const cases: [string[], RegExp, 1 | 2][] = [
    [['classify', '--model', path.join(tmp, 'nope.vimq'), img], /nope\.vimq: no such file/, 1],
    [['classify', '--model', labels, img], /labels\.txt: /, 1],
    [['convert', `${SMALL}/model.pth`, '-o', path.join(tmp, 'x.vimq'), '--mean', '1,2'], /mean and std need 3 values/, 1],
    [['classify', '--top', 'zero', img], /--top needs a positive integer/, 2],
    [['classify', '--no-such-flag', img], /unknown option '--no-such-flag'/, 2],
    [['classify'], /missing required argument 'inputs'/, 2],
    [['classify', '--model'], /argument missing/, 2],
    [['classify', '--weights', 'best', img], /--weights.*'best' is invalid/, 2],
    [['frobnicate'], /unknown command 'frobnicate'/, 2],
  ];
  for (const [args, message, code] of cases) {
    refused(vimedge(args), message, code);
  }
});

test('classify of a folder without images is an error naming it', () => {
  for (const name of ['empty', 'text-only']) mkdirSync(path.join(tmp, name));
  writeFileSync(path.join(tmp, 'text-only', 'notes.txt'), 'not an image');
  for (const name of ['empty', 'text-only']) {
    const r = vimedge(['classify', '--model', model, path.join(tmp, name)]);
    refused(r, new RegExp(`no images found in .*${name}`));
    assert.is(r.stdout, '');
  }
});

test('--help shows each default once', () => {
  const r = vimedge(['classify', '--help']);
  assert.is(r.code, 0, r.stderr);
  const threads = r.stdout.split('\n').find((l) => l.includes('--threads'))!;
  assert.is(threads.match(/default/g)?.length, 1, threads);
});

test('classify accepts a checkpoint directly (.pth and .safetensors) with the same answer as the .vimq', () => {
  const img = `${IMAGES}/motorcycle_tiny_50x40.png`;
  const outputs = [model, `${SMALL}/model.pth`, `${SMALL}/model.safetensors`].map((m) => {
    const r = vimedge(['classify', '--model', m, '--json', '--logits', img]);
    assert.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).logits;
  });
  assert.equal(outputs[1], outputs[0]);
  assert.equal(outputs[2], outputs[0]);
});

test('eval: JSON summary and confusion PNG on Fashion-MNIST, and a class-folder data set mapped by label name', () => {
  const plot = path.join(tmp, 'confusion.png');
  const r = vimedge(['eval', 'models/vim-fmnist.vimq', '--dataset', 'fashion-mnist', '--limit', '40', '--json', '--plot', plot]);
  assert.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.is(j.images, 40);
  assert.ok(j.top1 > 0.8 && j.top1 <= 1 && j.top5 >= j.top1, `top1 ${j.top1} top5 ${j.top5}`);
  assert.is(j.per_class.length, 10);
  assert.is(j.per_class.reduce((s: number, c: { images: number }) => s + c.images, 0), 40);
  assert.ok(j.images_per_s > 0);
  assert.equal([...readFileSync(plot).subarray(1, 4)], [0x50, 0x4e, 0x47]);
  const root = path.join(tmp, 'folder-set');
  for (const [cls, file] of [['Bag', 'test-0018-bag.png'], ['Trouser', 'test-0002-trouser.png'], ['Sandal', 'test-0008-sandal.png']]) {
    mkdirSync(path.join(root, cls), { recursive: true });
    copyFileSync(path.join('examples/images', file), path.join(root, cls, file));
  }
  const f = vimedge(['eval', 'models/vim-fmnist.vimq', '--dataset', root, '--json']);
  assert.is(f.code, 0, f.stderr);
  const fj = JSON.parse(f.stdout);
  assert.is(fj.images, 3);
  assert.is(fj.top1, 1);
  assert.is(fj.per_class.find((c: { label: string }) => c.label === 'Bag').images, 1);
  const text = vimedge(['eval', 'models/vim-fmnist.vimq', '--dataset', root]);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, /\n  Bag +100\.0%  \(1 images\)\n/);
  assert.match(text.stdout, /\n  Coat +-  \(0 images\)\n/);   // no images: no accuracy, not 0.0%
  refused(vimedge(['eval', 'models/vim-fmnist.vimq', '--dataset', path.join(tmp, 'mixed')]), /no class sub-folders/);
});

test.run();

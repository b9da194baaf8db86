// `vimedge quantize`, `inspect` and `outliers` end to end, and bad input answered with one clear line
// (exit 1, no stack trace, no output file): an empty calibration folder, fewer images than asked, the test
// split, an unknown method, an already-quantized model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { refused, vimedge } from './helpers/cli.js';
import { fixtureVimq } from './helpers/quant.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'vimedge-quant-cli-'));
const IMAGES = 'test/fixtures/images';
const fp32 = path.join(tmp, 'gray.vimq');
const w8 = path.join(tmp, 'gray.w8a8.vimq');

test('quantize --bits 8 with a folder of images, then inspect shows the recipe and classify runs the int8 file', async () => {
  writeFileSync(fp32, await fixtureVimq());
  const q = vimedge(['quantize', fp32, '--method', 'mambaquant', '--bits', '8', '--calib', IMAGES, '--calib-size', '8', '--seed', '3', '-o', w8]);
  assert.is(q.code, 0, q.stderr);
  assert.match(q.stdout, /mambaquant w8a8, calibrated on 8 images of test\/fixtures\/images \(seed 3\)/);
  const info = JSON.parse(vimedge(['inspect', w8, '--json']).stdout);
  assert.is(info.weights, 'w8a8');
  assert.equal(info.quantization.calibration, { set: IMAGES, size: 8, seed: 3 });
  assert.is(info.quantization.method, 'mambaquant');
  assert.match(vimedge(['inspect', w8]).stdout, /quantization: mambaquant w8a8: weights 8-bit per channel .* calibrated on 8 images of test\/fixtures\/images, seed 3/);
  const c = vimedge(['classify', '--model', w8, '--json', path.join(IMAGES, 'chelsea_451x300.jpg')]);
  assert.is(c.code, 0, c.stderr);
  assert.is(JSON.parse(c.stdout).top.length, 5);
});

test('quantize --bits 4 --calib fashion-mnist:train (the Debian idx files)', () => {
  const out = path.join(tmp, 'fm.vimq');
  const q = vimedge(['quantize', fp32, '--method', 'rtn', '--bits', '4', '--calib', 'fashion-mnist:train', '--calib-size', '16', '-o', out, '--json']);
  assert.is(q.code, 0, q.stderr);
  const j = JSON.parse(q.stdout);
  assert.equal(j.recipe.calibration, { set: 'fashion-mnist:train', size: 16, seed: 0 });
  assert.is(j.recipe.bits, 'w4a8');
});

test('without --calib-size, quantize calibrates on the whole folder, and warns when it is small', () => {
  const out = path.join(tmp, 'all.vimq');
  const q = vimedge(['quantize', fp32, '--method', 'rtn', '--calib', IMAGES, '-o', out, '--json']);
  assert.is(q.code, 0, q.stderr);
  assert.equal(JSON.parse(q.stdout).recipe.calibration, { set: IMAGES, size: 18, seed: 0 });
  assert.match(q.stderr, 'vimedge: warning: calibrating on 18 images; activation ranges from fewer than 32 are noisy');
});

test('quantize on 3 threads writes the file one thread writes (the calibration passes split each image)', () => {
  const files = [1, 3].map((threads) => {
    const out = path.join(tmp, `threads-${threads}.vimq`);
    const q = vimedge(['quantize', fp32, '--method', 'mambaquant', '--calib', IMAGES, '--calib-size', '4', '--threads', String(threads), '-o', out]);
    assert.is(q.code, 0, q.stderr);
    return readFileSync(out);
  });
  assert.ok(files[0].equals(files[1]));
});

test('outliers draws a PNG and summarises every site before and after', () => {
  const png = path.join(tmp, 'outliers.png');
  const r = vimedge(['outliers', fp32, '--calib', IMAGES, '--calib-size', '4', '--method', 'quarot', '-o', png, '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(Array.from(readFileSync(png).subarray(0, 4)), [0x89, 0x50, 0x4e, 0x47]);
  const j = JSON.parse(r.stdout);
  assert.is(j.sites.length, 6);
  assert.is(j.sites[5].before.site, 'Q_out (out_proj input)');
});

test('bad input: empty folder, too few images, test split, unknown method, already quantized', () => {
  const empty = path.join(tmp, 'empty');
  mkdirSync(path.join(empty, 'sub'), { recursive: true });
  writeFileSync(path.join(empty, 'sub', 'notes.txt'), 'not an image');
  const out = path.join(tmp, 'never.vimq');
  refused(vimedge(['quantize', fp32, '--calib', empty, '-o', out]), /--calib .*empty: no image files in the folder/);
  refused(vimedge(['quantize', fp32, '--calib', IMAGES, '--calib-size', '100', '-o', out]), /has 18 images, fewer than --calib-size 100/);
  refused(vimedge(['quantize', fp32, '--calib', 'fashion-mnist:test', '-o', out]), /calibrate on training images only/);
  refused(vimedge(['quantize', fp32, '--bits', '6', '--calib', IMAGES, '-o', out]), /--bits 6: expected w8a8, w4a8, w6a6, w4a4, or 8 \/ 4/, 2);
  refused(vimedge(['quantize', fp32, '--method', 'gptq', '--calib', IMAGES, '-o', out]), /unknown quantization method 'gptq'/);
  refused(vimedge(['quantize', w8, '--calib', IMAGES, '--calib-size', '4', '-o', out]), /already quantized \(mambaquant w8a8\)/);
  refused(vimedge(['quantize', fp32, '--calib', path.join(tmp, 'missing'), '-o', out]), /not a readable folder/);
  refused(vimedge(['quantize', fp32, '--bits', 'w4a4', '--calib', IMAGES, '-o', out]), /--bits w4a4 .* add --simulate/);
  assert.not.ok(existsSync(out), 'a refused run wrote its output');
  assert.equal(readdirSync(tmp).filter((f) => f.includes('.partial-')), [], 'temporary files left');
});

test('an output folder that does not exist, or a folder as output, is refused before any work', () => {
  const missing = path.join(tmp, 'no-such-folder', 'q.vimq');
  for (const [verb, extra] of [['quantize', []], ['convert', []], ['outliers', []]] as const) {
    const r = vimedge([verb, 'test/fixtures/small/small-gray/model.pth', ...extra, '-o', missing]);
    refused(r, /--output .*q\.vimq: the folder .*no-such-folder does not exist/, 2);
  }
  refused(vimedge(['convert', 'test/fixtures/small/small-gray/model.pth', '-o', tmp]), /is a folder, not a file/, 2);
  refused(vimedge(['eval', 'test/fixtures/small/small-gray/model.pth', '--dataset', 'fashion-mnist', '--plot', missing]), /--plot .* does not exist/, 2);
});

test.run();

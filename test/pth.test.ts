// torch.save archives written by torch 1.13 (tools/make_reader_fixtures.py) read back bit for bit against the
// float32 values Python recorded; container damage of any kind raises VimedgeError naming the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { unzipSync, zipSync } from 'fflate';
import { readPth } from '../src/formats/pth.js';
import { checkpointFormat, readCheckpoint } from '../src/formats/checkpoint.js';
import { seededRandom } from '../src/quant/random.js';
import type { StateDict } from '../src/tensor.js';
import { onlyVimedgeErrors, rejects } from './helpers/rejects.js';
import { fixture, expected, bits } from './helpers/readers.js';

/** Same keys in the same order, same shapes, same float32 bit patterns (NaN, -0 and Inf included). */
function assertExactly(sd: StateDict, file: string): void {
  const want = expected[file];
  assert.equal([...sd.keys()], Object.keys(want), `${file}: keys`);
  for (const [key, { shape, f32 }] of Object.entries(want)) {
    const tensor = sd.get(key)!;
    assert.equal(tensor.shape, shape, `${file}: ${key} shape`);
    const raw = Buffer.from(f32, 'base64');
    const values = new Float32Array(raw.length / 4);
    new Uint8Array(values.buffer).set(raw);
    assert.equal(bits(tensor.data), bits(values), `${file}: ${key} values`);
  }
}

for (const [file, what] of [
  ['bare.pth', 'a bare OrderedDict state_dict, with a 0-d, an empty and a NaN/Inf/-0/subnormal tensor'],
  ['protocol4.pth', 'the same saved with pickle protocol 4 (FRAME, STACK_GLOBAL, MEMOIZE)'],
  ['tiny-vim-training.pth', "{'model', 'optimizer', 'lr_scheduler', 'model_ema', 'scaler', 'args': Namespace, int64 tensor}"],
  ['dtypes.pth', "{'model': ...} of float16, bfloat16 and float64 tensors"],
  ['views.pth', 'a transposed, a narrowed (offset), a column (strided), a permuted and a step-2 view'],
  ['parameters.pth', 'nn.Parameter values (_rebuild_parameter)'],
  ['big-endian.pth', "byteorder 'big' with byte-swapped storages"],
] as const) {
  test(`${file}: ${what}`, () => assertExactly(readPth(fixture(file), file), file));
}

test('contiguous fp32 tensors are views of the file, not copies: a checkpoint costs its file and no more', () => {
  const bytes = new Uint8Array(fixture('views.pth'));   // its own buffer: a pooled Buffer may sit unaligned
  const sd = readPth(bytes, 'views.pth');
  const base = sd.get('base')!.data, rows = sd.get('rows_1_to_3')!.data;
  assert.equal(Array.from(rows), Array.from(base.subarray(6, 18)));
  assert.ok(base.buffer === bytes.buffer && rows.buffer === bytes.buffer);
  rows[0] = 1234;   // two views of one storage share it, as in torch
  assert.is(base[6], 1234);
});

test('readCheckpoint recognises a .pth by content, whatever its name', () => {
  assert.is(checkpointFormat(fixture('bare.pth'), 'weights.bin'), 'pth');
  assert.is(checkpointFormat(fixture('legacy-format.pth'), 'old.pth'), 'pth');   // so that readPth explains it
  assertExactly(readCheckpoint(fixture('bare.pth'), 'weights.bin'), 'bare.pth');
});

test('refusals name the file and the problem', () => {
  rejects(() => readPth(fixture('legacy-format.pth'), 'old.pth'), 'BAD_CHECKPOINT', 'old.pth: legacy (pre-1.6)', 'torch >= 1.6');
  rejects(() => readPth(fixture('int-tensor-in-model.pth'), 'i.pth'), 'BAD_CHECKPOINT', "i.pth: tensor 'steps' has dtype int64");
  rejects(() => readPth(fixture('expanded-view.pth'), 'e.pth'), 'BAD_CHECKPOINT', "e.pth: tensor 'w'", 'more elements than its 3-element storage');
  rejects(() => readPth(fixture('repeated-views.pth'), 'r.pth'), 'BAD_CHECKPOINT', "r.pth: at tensor 'w", 'more elements than the file has bytes');
  rejects(() => readPth(fixture('tiny-vim.safetensors'), 's.pth'), 'BAD_CHECKPOINT', 's.pth: not a zip archive');
  rejects(() => readCheckpoint(Uint8Array.of(1, 2, 3), 'junk.bin'), 'BAD_CHECKPOINT', 'junk.bin: not a recognised checkpoint', '.safetensors');
  rejects(() => readCheckpoint(new Uint8Array(0), 'empty.pth'), 'BAD_CHECKPOINT', 'empty.pth: not a recognised checkpoint');
});

/** bare.pth's entries, re-zipped (stored) after `edit`: archives torch would never write. */
function rezip(edit: (files: Record<string, Uint8Array>) => void): Uint8Array {
  const files = unzipSync(fixture('bare.pth'));
  edit(files);
  return zipSync(files, { level: 0 });
}

test('archive contents that torch.save never writes are refused', () => {
  rejects(() => readPth(rezip((f) => delete f['bare/data/1']), 'm.pth'), 'BAD_CHECKPOINT', "m.pth: tensor 'bias' needs bare/data/1, which the archive lacks");
  rejects(() => readPth(rezip((f) => { f['bare/data/0'] = f['bare/data/0'].subarray(4); }), 's.pth'), 'BAD_CHECKPOINT', "tensor 'weight': storage 0 has 44 bytes, expected 12 × float32");
  rejects(() => readPth(rezip((f) => delete f['bare/data.pkl']), 'p.pth'), 'BAD_CHECKPOINT', 'no <folder>/data.pkl');
  rejects(() => readPth(rezip((f) => { f['other/data.pkl'] = f['bare/data.pkl']; }), 'two.pth'), 'BAD_CHECKPOINT', '2 data.pkl entries');
  rejects(() => readPth(rezip((f) => { f['bare/byteorder'] = new TextEncoder().encode('middle'); }), 'b.pth'), 'BAD_CHECKPOINT', "byteorder entry says 'middle'");
  rejects(() => readPth(rezip((f) => { f['bare/data.pkl'] = Uint8Array.of(0x80, 2, 0x5d, 0x2e); }), 'l.pth'), 'BAD_CHECKPOINT', 'data.pkl holds a list, not a state_dict');
  rejects(() => readPth(rezip((f) => { f['bare/data.pkl'] = Uint8Array.of(0x80, 2, 0x7d, 0x4b, 1, 0x4b, 2, 0x73, 0x2e); }), 'k.pth'), 'BAD_CHECKPOINT', 'state_dict has a key that is a number');
});

test('an archive truncated or cut anywhere raises only VimedgeError', () => {
  const small = fixture('bare.pth');
  for (let end = 0; end < small.length; end++) rejects(() => readPth(small.subarray(0, end), 'cut.pth'), 'BAD_CHECKPOINT', 'cut.pth: ');
  const large = fixture('tiny-vim-training.pth');
  for (let end = 0; end < large.length; end += 97) rejects(() => readPth(large.subarray(0, end), 'cut.pth'), 'BAD_CHECKPOINT', 'cut.pth: ');
});

test('random corruption anywhere in an archive raises only VimedgeError (or reads different numbers)', () => {
  const original = fixture('bare.pth');
  const random = seededRandom(99);
  for (let trial = 0; trial < 4000; trial++) {
    const bytes = Uint8Array.from(original);
    // Half the trials aim at the zip directory at the end, where one byte changes offsets and sizes.
    const from = trial % 2 ? 0 : original.length - 400;
    for (let k = 1 + random.int(3); k > 0; k--) bytes[from + random.int(bytes.length - from)] = random.int(256);
    onlyVimedgeErrors(() => readPth(bytes, 'fuzz.pth'), `trial ${trial}`);
  }
});

test.run();

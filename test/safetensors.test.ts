// .safetensors: files written by Python read back bit for bit, and one test per header validation rule,
// on files assembled here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readSafetensors } from '../src/formats/safetensors.js';
import { checkpointFormat, readCheckpoint } from '../src/formats/checkpoint.js';
import { readPth } from '../src/formats/pth.js';
import { seededRandom } from '../src/quant/random.js';
import { onlyVimedgeErrors, rejects } from './helpers/rejects.js';
import { fixture, expected, bits } from './helpers/readers.js';

/** 8-byte length + header (JSON of `header`, or raw text) + `data` bytes. */
function safetensors(header: object | string, data: Uint8Array | number = 0): Uint8Array {
  const text = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + text.length + body.length);
  new DataView(out.buffer).setUint32(0, text.length, true);
  out.set(text, 8);
  out.set(body, 8 + text.length);
  return out;
}
const f32 = (...values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

test('files written by Python match the values torch held, bit for bit', () => {
  for (const file of ['tiny-vim.safetensors', 'dtypes.safetensors']) {
    const sd = readSafetensors(fixture(file), file);
    const want = expected[file];
    assert.equal(new Set(sd.keys()), new Set(Object.keys(want)), file);
    for (const [key, { shape, f32: b64 }] of Object.entries(want)) {
      const raw = Buffer.from(b64, 'base64');
      const values = new Float32Array(raw.length / 4);
      new Uint8Array(values.buffer).set(raw);
      assert.equal(sd.get(key)!.shape, shape, `${file} ${key}`);
      assert.equal(bits(sd.get(key)!.data), bits(values), `${file} ${key}`);
    }
  }
});

test('readCheckpoint recognises safetensors by content; .pth and .safetensors of one model agree', () => {
  assert.is(checkpointFormat(fixture('tiny-vim.safetensors'), 'model.bin'), 'safetensors');
  const fromSt = readCheckpoint(fixture('tiny-vim.safetensors'), 'model.bin');
  const fromPth = readPth(fixture('tiny-vim-training.pth'), 'tiny.pth');
  for (const [key, tensor] of fromPth) assert.equal(bits(fromSt.get(key)!.data), bits(tensor.data), key);
});

test('tensors in any header order, __metadata__, empty tensors and an unaligned data section are fine', () => {
  const header = JSON.stringify({
    b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    __metadata__: { format: 'pt' },
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    none: { dtype: 'F16', shape: [0, 4], data_offsets: [12, 12] },
  });
  const padding = ' '.repeat((4 - ((8 + header.length) % 4) + 1) % 4); // the data section starts at 1 mod 4
  const bytes = safetensors(header + padding, f32(1.5, -2, 3));
  assert.is((8 + header.length + padding.length) % 4, 1);
  const sd = readSafetensors(bytes, 'ok.safetensors');
  assert.equal([...sd.get('a')!.data], [1.5, -2]);
  assert.equal([...sd.get('b')!.data], [3]);
  assert.equal(sd.get('none')!.shape, [0, 4]);
});

const one = (info: object) => ({ t: info });
for (const [rule, bytes, fragment] of [
  ['shorter than the length field', new Uint8Array(5), '5 bytes is too short'],
  ['header length beyond the file', (() => { const b = safetensors({}); b[0] = 200; return b; })(), 'header length 200 exceeds the 2 bytes after it'],
  ['header length with a high word', (() => { const b = safetensors({}); b[4] = 1; return b; })(), 'header length 4294967298 exceeds'],
  ['header is not JSON', safetensors('{"t": '), 'header is not valid UTF-8 JSON'],
  ['header is not UTF-8', (() => { const b = safetensors('{"?": 1}'); b[10] = 0xff; return b; })(), 'header is not valid UTF-8 JSON'],
  ['header is an array', safetensors('[]'), 'header is not a JSON object'],
  ['__metadata__ with a number', safetensors({ __metadata__: { epoch: 3 } }), '__metadata__ must be an object of string values'],
  ['entry not an object', safetensors({ t: 5 }), "tensor 't' header entry is not an object"],
  ['unsupported dtype', safetensors(one({ dtype: 'I64', shape: [1], data_offsets: [0, 8] }), 8), "tensor 't' has dtype I64; supported: F32, F16, BF16, F64"],
  ['dtype from Object.prototype', safetensors(one({ dtype: 'constructor', shape: [1], data_offsets: [0, 4] }), 4), 'has dtype constructor'],
  ['missing dtype', safetensors(one({ shape: [1], data_offsets: [0, 4] }), 4), "tensor 't' has no dtype"],
  ['negative dim', safetensors(one({ dtype: 'F32', shape: [-1], data_offsets: [0, 4] }), 4), 'shape is not a list of non-negative integers'],
  ['fractional dim', safetensors(one({ dtype: 'F32', shape: [1.5], data_offsets: [0, 4] }), 4), 'shape is not a list'],
  ['offsets not a pair', safetensors(one({ dtype: 'F32', shape: [1], data_offsets: [0] }), 4), 'data_offsets is not [begin, end]'],
  ['offsets reversed', safetensors(one({ dtype: 'F32', shape: [1], data_offsets: [4, 0] }), 4), 'end before they begin'],
  ['offsets past the data', safetensors(one({ dtype: 'F32', shape: [2], data_offsets: [0, 8] }), 4), 'run past the 4-byte data section'],
  ['huge offsets', safetensors(one({ dtype: 'F32', shape: [1], data_offsets: [2 ** 60, 2 ** 60 + 4] }), 4), 'data_offsets is not [begin, end]'],
  ['shape × dtype ≠ bytes', safetensors(one({ dtype: 'F32', shape: [3], data_offsets: [0, 8] }), 8), "shape [3] of F32 needs 12 bytes but data_offsets span 8"],
  ['overlapping tensors', safetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), "tensor 'b' data_offsets overlap tensor 'a'"],
  ['a gap between tensors', safetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, 12), "4 unused bytes before tensor 'b'"],
  ['bytes after the last tensor', safetensors(one({ dtype: 'F32', shape: [1], data_offsets: [0, 4] }), 12), 'data section has 12 bytes but the tensors cover 4'],
] as const) {
  test(`refused: ${rule}`, () => {
    rejects(() => readSafetensors(bytes as Uint8Array, 'bad.safetensors'), 'BAD_CHECKPOINT', 'bad.safetensors: ', fragment);
  });
}

test('refused: a header over the 100 MB limit, before parsing it', () => {
  const bytes = new Uint8Array(8 + 100_000_001);
  new DataView(bytes.buffer).setUint32(0, 100_000_001, true);
  rejects(() => readSafetensors(bytes, 'big.safetensors'), 'BAD_CHECKPOINT', 'header length 100000001 exceeds the 100000000-byte limit');
});

test('a real file truncated or corrupted anywhere raises only VimedgeError', () => {
  const original = fixture('dtypes.safetensors');
  for (let end = 0; end < original.length; end++) {
    rejects(() => readSafetensors(original.subarray(0, end), 'cut.safetensors'), 'BAD_CHECKPOINT', 'cut.safetensors: ');
  }
  const random = seededRandom(7);
  for (let trial = 0; trial < 3000; trial++) {
    const bytes = Uint8Array.from(original);
    bytes[random.int(bytes.length)] = random.int(256);
    onlyVimedgeErrors(() => readSafetensors(bytes, 'fuzz.safetensors'), `trial ${trial}`);
  }
});

test.run();

// The restricted unpickler: the hostile corpus (tools/make_hostile_pickles.py, each file verified to run its
// payload under Python's own loaders where MANIFEST says so) must be refused without side effects; the
// opcodes torch.save uses must decode to the right values; malformed input must only ever raise VimedgeError.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { unzipSync } from 'fflate';
import type { ErrorCode } from '../src/errors.js';
import { readCheckpoint } from '../src/formats/checkpoint.js';
import { InertObject, MAX_MARK_DEPTH, StorageRef, TensorRef, unpickle, type PickleValue } from '../src/formats/pickle.js';
import { seededRandom } from '../src/quant/random.js';
import { onlyVimedgeErrors, rejects } from './helpers/rejects.js';

const HOSTILE = new URL('./fixtures/hostile/', import.meta.url);
const READERS = new URL('./fixtures/readers/', import.meta.url);

interface HostileEntry { file: string; loader: 'pickle' | 'checkpoint'; tries: string; code: ErrorCode; message: string; marker: string; executes_in_python: boolean }
const manifest: HostileEntry[] = JSON.parse(readFileSync(new URL('MANIFEST.json', HOSTILE), 'utf8'));

// --- a tiny pickle assembler for hand-made streams ---------------------------------------------------------
const enc = new TextEncoder();
const op = (...codes: number[]) => Uint8Array.from(codes);
const str = (s: string) => { const b = enc.encode(s); return concat(op(0x58, b.length & 0xff, (b.length >> 8) & 0xff, 0, 0), b); };
const global = (module: string, name: string) => concat(op(0x63), enc.encode(`${module}\n${name}\n`));
function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
const PROTO2 = op(0x80, 2);
const STOP = op(0x2e);
const pickle = (...parts: Uint8Array[]) => concat(PROTO2, ...parts, STOP);

function dataPkl(file: string): Uint8Array {
  const files = unzipSync(readFileSync(new URL(file, READERS)));
  return Object.entries(files).find(([name]) => name.endsWith('/data.pkl'))![1];
}

test('the hostile corpus has at least 12 files and MANIFEST lists every one', () => {
  const onDisk = readdirSync(HOSTILE).filter((f) => f !== 'MANIFEST.json').sort();
  assert.ok(manifest.length >= 12);
  assert.equal(manifest.map((e) => e.file).sort(), onDisk);
  assert.ok(manifest.filter((e) => e.executes_in_python).length >= 10, 'most payloads must be real');
});

for (const entry of manifest) {
  test(`hostile ${entry.file}: ${entry.tries}`, () => {
    rmSync(entry.marker, { force: true });
    const bytes = readFileSync(new URL(entry.file, HOSTILE));
    const error = rejects(() => (entry.loader === 'pickle' ? unpickle(bytes, entry.file) : readCheckpoint(bytes, entry.file)),
      entry.code, entry.message, entry.file);
    if (error.code === 'UNSAFE_PICKLE') assert.match(error.message, /byte \d+/);
    assert.not.ok(existsSync(entry.marker), `${entry.marker} was created`);
  });
}

test('refused globals are named with the byte offset of the opcode', () => {
  const e = rejects(() => unpickle(pickle(op(0x4e, 0x30), global('posix', 'system')), 'x.pkl'), 'UNSAFE_PICKLE');
  assert.is(e.message, "x.pkl: byte 4: global 'posix.system' is not allowed (a checkpoint may only reference torch "
    + 'tensor rebuilders, torch storage types, collections.OrderedDict and argparse.Namespace)');
});

test('scalars, strings, bytes and containers decode to their JS forms', () => {
  const value = unpickle(pickle(
    op(0x5d, 0x28),                                   // EMPTY_LIST, MARK
    op(0x4e, 0x88, 0x89),                             // None, True, False
    op(0x4a, 0xfe, 0xff, 0xff, 0xff),                 // BININT -2
    op(0x4b, 200), op(0x4d, 0x34, 0x12),              // BININT1 200, BININT2 0x1234
    op(0x8a, 0x01, 0xff),                             // LONG1 -1
    op(0x8a, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x01),     // LONG1 2^64 (a bigint)
    op(0x8b, 0, 0, 0, 0),                             // LONG4 of zero bytes: 0
    op(0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0),           // BINFLOAT 1.5 (big-endian)
    str('Vim ✓'),
    op(0x8c, 2), enc.encode('hi'),                    // SHORT_BINUNICODE
    op(0x43, 3, 1, 2, 3),                             // SHORT_BINBYTES
    op(0x29), op(0x4b, 1, 0x4b, 2, 0x86),             // (), (1, 2)
    op(0x7d, 0x4b, 7, 0x4b, 8, 0x73),                 // {7: 8}
    op(0x65),                                         // APPENDS
  ), 'values.pkl') as PickleValue[];
  assert.equal(value.slice(0, 8), [null, true, false, -2, 200, 0x1234, -1, 2n ** 64n]);
  assert.equal(value.slice(8, 11), [0, 1.5, 'Vim ✓']);
  assert.is(value[11], 'hi');
  assert.equal(value[12], Uint8Array.of(1, 2, 3));
  assert.ok(Object.isFrozen(value[13]) && Object.isFrozen(value[14]), 'tuples are frozen');
  assert.equal(value[14], [1, 2]);
  assert.equal(value[15], new Map([[7, 8]]));
  assert.not.ok(Object.isFrozen(value), 'lists are not');
});

test('the memo shares objects, and a huge LONG_BINPUT index costs nothing', () => {
  const value = unpickle(pickle(
    op(0x5d, 0x72, 0xff, 0xff, 0xff, 0xff),           // [] LONG_BINPUT 0xFFFFFFFF
    op(0x6a, 0xff, 0xff, 0xff, 0xff, 0x86),           // LONG_BINGET 0xFFFFFFFF, TUPLE2
  ), 'memo.pkl') as PickleValue[];
  assert.is(value[0], value[1]);
});

test('argparse.Namespace becomes an inert object holding its state; OrderedDict attributes are dropped', () => {
  const value = unpickle(pickle(
    op(0x7d, 0x28),
    str('args'), global('argparse', 'Namespace'), op(0x29, 0x81), op(0x7d), str('lr'), op(0x4b, 5, 0x73, 0x62),
    str('sd'), global('collections', 'OrderedDict'), op(0x29, 0x52), op(0x7d), str('_metadata'), op(0x7d, 0x73, 0x62),
    op(0x75),
  ), 'ns.pkl') as Map<string, PickleValue>;
  const args = value.get('args');
  assert.instance(args, InertObject);
  assert.is((args as InertObject).className, 'argparse.Namespace');
  assert.equal((args as InertObject).state, new Map([['lr', 5]]));
  assert.equal(value.get('sd'), new Map());
});

test('allowed globals are usable only in their role', () => {
  rejects(() => unpickle(pickle(global('argparse', 'Namespace'), op(0x29, 0x52)), 'a.pkl'), 'UNSAFE_PICKLE', 'REDUCE calls global argparse.Namespace');
  rejects(() => unpickle(pickle(global('collections', 'OrderedDict'), op(0x29, 0x81)), 'b.pkl'), 'UNSAFE_PICKLE', 'NEWOBJ creates global collections.OrderedDict');
  rejects(() => unpickle(pickle(global('torch', 'FloatStorage'), op(0x29, 0x52)), 'c.pkl'), 'UNSAFE_PICKLE', 'not an allowed function');
  rejects(() => unpickle(pickle(str('x'), op(0x29, 0x52)), 'd.pkl'), 'UNSAFE_PICKLE', 'REDUCE calls a string');
  rejects(() => unpickle(pickle(global('collections', 'OrderedDict'), op(0x4b, 1, 0x85, 0x52)), 'e.pkl'), 'BAD_CHECKPOINT', 'called with 1 arguments');
  rejects(() => unpickle(pickle(op(0x4b, 1), op(0x7d, 0x62)), 'f.pkl'), 'UNSAFE_PICKLE', 'BUILD on a number');
});

test('persistent ids become typed storage references; integer storages are accepted as tags', () => {
  const pid = (type: string) => concat(op(0x28), str('storage'), global('torch', type), str('7'), str('cuda:0'), op(0x4b, 3, 0x74, 0x51));
  assert.equal(unpickle(pickle(pid('HalfStorage')), 'p.pkl'), new StorageRef('float16', '7', 3));
  assert.equal(unpickle(pickle(pid('LongStorage')), 'p.pkl'), new StorageRef('int64', '7', 3));
  rejects(() => unpickle(pickle(op(0x4b, 1, 0x51)), 'p.pkl'), 'UNSAFE_PICKLE', 'persistent id is a number, not');
});

test('a real torch.save pickle decodes to tensor references with shapes, strides and offsets', () => {
  const root = unpickle(dataPkl('views.pth'), 'views.pth') as Map<string, TensorRef>;
  const transposed = root.get('transposed')!;
  assert.instance(transposed, TensorRef);
  assert.equal([transposed.shape, transposed.stride, transposed.offset], [[6, 4], [1, 6], 0]);
  const rows = root.get('rows_1_to_3')!;
  assert.equal([rows.shape, rows.stride, rows.offset, rows.storage.key], [[2, 6], [6, 1], 6, root.get('base')!.storage.key]);
});

test(`up to ${MAX_MARK_DEPTH} open MARKs are fine, one more is refused`, () => {
  const marks = (n: number) => concat(PROTO2, new Uint8Array(n).fill(0x28), op(0x4e, 0x2e));
  assert.is(unpickle(marks(MAX_MARK_DEPTH), 'm.pkl'), null);
  rejects(() => unpickle(marks(MAX_MARK_DEPTH + 1), 'm.pkl'), 'BAD_CHECKPOINT', `more than ${MAX_MARK_DEPTH} nested MARKs`);
});

test('100000 nested lists built without MARKs load without recursion', () => {
  const n = 100_000;
  const bytes = concat(PROTO2, new Uint8Array(n).fill(0x5d), new Uint8Array(n - 1).fill(0x61), STOP);
  let depth = 0;
  for (let v = unpickle(bytes, 'deep.pkl') as PickleValue[]; v.length > 0; v = v[0] as PickleValue[]) depth++;
  assert.is(depth, n - 1);
});

test('malformed streams are BAD_CHECKPOINT errors that say what is wrong', () => {
  rejects(() => unpickle(op(0x80, 1, 0x4e, 0x2e), 'v.pkl'), 'BAD_CHECKPOINT', 'pickle protocol 1');
  rejects(() => unpickle(pickle(op(0x58, 2, 0, 0, 0, 0xc3, 0x28)), 'u.pkl'), 'BAD_CHECKPOINT', 'BINUNICODE is not valid UTF-8');
  rejects(() => unpickle(pickle(op(0x8b, 0, 1, 0, 0)), 'l.pkl'), 'BAD_CHECKPOINT', 'integer of 256 bytes');
  rejects(() => unpickle(pickle(op(0x74)), 't.pkl'), 'BAD_CHECKPOINT', 'no open MARK');
  rejects(() => unpickle(pickle(op(0x4e, 0x61)), 'a.pkl'), 'BAD_CHECKPOINT', 'stack underflow at opcode 0x61');
  rejects(() => unpickle(pickle(op(0x29, 0x4e, 0x61)), 'a.pkl'), 'BAD_CHECKPOINT', 'APPEND to a tuple');
  rejects(() => unpickle(pickle(op(0x5d, 0x28, 0x4e, 0x75)), 's.pkl'), 'BAD_CHECKPOINT', 'SETITEMS with an odd number');
  rejects(() => unpickle(concat(PROTO2, op(0x63), enc.encode('os')), 'g.pkl'), 'BAD_CHECKPOINT', 'no terminating newline');
  rejects(() => unpickle(concat(PROTO2, op(0x95, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x4e, 0x2e)), 'f.pkl'), 'BAD_CHECKPOINT', 'FRAME of 255 bytes');
  rejects(() => unpickle(concat(PROTO2, op(0x4e)), 'n.pkl'), 'BAD_CHECKPOINT', 'stream ends without STOP');
  rejects(() => unpickle(new Uint8Array(0), 'empty.pkl'), 'BAD_CHECKPOINT', 'empty.pkl: byte 0');
});

test('a real data.pkl truncated at every byte position raises only VimedgeError', () => {
  const bytes = dataPkl('tiny-vim-training.pth');
  for (let end = 0; end < bytes.length; end++) {
    rejects(() => unpickle(bytes.subarray(0, end), 'cut.pkl'), 'BAD_CHECKPOINT');
  }
});

test('random byte corruption of a real data.pkl raises only VimedgeError', () => {
  const original = dataPkl('tiny-vim-training.pth');
  const random = seededRandom(12345);
  for (let trial = 0; trial < 3000; trial++) {
    const bytes = original.slice();
    for (let k = 1 + random.int(3); k > 0; k--) bytes[random.int(bytes.length)] = random.int(256);
    onlyVimedgeErrors(() => unpickle(bytes, 'fuzz.pkl'), `trial ${trial}`);
  }
});

test.run();

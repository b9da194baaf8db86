// Property-based fuzzing of the .safetensors reader and of loading a model from one: the 8-byte header
// length, the JSON header (dtypes, shapes, data_offsets that overlap, leave gaps or run past the end,
// __metadata__, pathological JSON) and the bytes themselves. Property: a valid result or a one-line
// VimedgeError; never another exception, a hang, a wasm trap or disproportionate memory.
// test/safetensors.test.ts has one hand-made file per validation rule; this searches around them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { readSafetensors } from '../src/formats/safetensors.js';
import { loadModel } from '../src/model/model-file.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';
import {
  expectClean, expectCleanAsync, fcOptions, fuzzRuns, modelRuns, mutate, seedMutationsArb, Tally, truncationPoints,
  validStateDict, type Layout,
} from './helpers/fuzz.js';

const tally = new Tally('safetensors');
const MODEL = new Uint8Array(readFileSync('test/fixtures/small/small/model.safetensors'));
const DTYPES = new Uint8Array(readFileSync('test/fixtures/readers/dtypes.safetensors'));
const wasm = await readKernelWasm();
const BUDGET = { bytes: 500, header: 500, json: 100 };
const TOTAL = BUDGET.bytes + BUDGET.header + BUDGET.json;

interface Parsed {
  header: Record<string, any>;
  data: Uint8Array;
}

function parse(bytes: Uint8Array): Parsed {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))), data: bytes.subarray(8 + length) };
}

function serialise(header: unknown, data: Uint8Array, rawHeader?: string): Uint8Array {
  const text = new TextEncoder().encode(rawHeader ?? JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

function layoutOf(bytes: Uint8Array): Layout {
  const { header } = parse(bytes);
  const dataStart = bytes.length - parse(bytes).data.length;
  const boundaries = [0, 8, dataStart, bytes.length];
  for (const [key, info] of Object.entries(header)) {
    if (key !== '__metadata__') boundaries.push(dataStart + info.data_offsets[0], dataStart + info.data_offsets[1]);
  }
  return { boundaries, fields: [{ at: 0, width: 8, littleEndian: true, name: 'header length' }] };
}

const FIXTURES = [MODEL, DTYPES].map((bytes) => ({ bytes, layout: layoutOf(bytes), parsed: parse(bytes) }));

test('truncation at every section boundary', () => {
  for (const { bytes, layout } of FIXTURES) {
    for (const at of truncationPoints({ bytes, layout })) {
      expectClean(tally, `truncate ${at}`, at, () => readSafetensors(bytes.subarray(0, at), 'cut.safetensors'), validStateDict);
    }
  }
});

test('bytes: header length field, bit flips, insertions, deletions, copies', () => {
  fc.assert(fc.property(seedMutationsArb(FIXTURES),
    (drawn) => {
      const { which, bytes, description } = mutate(FIXTURES, drawn);
      expectClean(tally, `bytes ${which}: ${description}`, bytes.length,
        () => readSafetensors(bytes, 'fuzz.safetensors'), validStateDict);
    }), fcOptions(fuzzRuns(BUDGET.bytes, TOTAL)));
});

// --- header edits, re-serialised with a correct length so that the checks behind the length are reached ---

const { header: HEADER, data: DATA } = FIXTURES[0].parsed;
const KEYS = Object.keys(HEADER).filter((k) => k !== '__metadata__');
const OFFSETS = KEYS.map((k) => HEADER[k].data_offsets as number[]);
const SHAPES = KEYS.map((k) => HEADER[k].shape as number[]);

const weirdNumber = fc.constantFrom(0, 1, -1, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, 1e308, -0, '8', null, true);
const dimension = fc.oneof(fc.integer({ min: 0, max: 300 }), weirdNumber);
type Edit =
  | { kind: 'dtype'; nth: number; value: unknown }
  | { kind: 'shape'; nth: number; value: unknown }
  | { kind: 'offsets'; nth: number; value: unknown }
  | { kind: 'drop'; nth: number }
  | { kind: 'add'; key: string; value: unknown }
  | { kind: 'metadata'; value: unknown }
  | { kind: 'rename'; nth: number; key: string };

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  // wrong dtypes: other float widths (byte counts then disagree), integers, unknown names, non-strings
  fc.record({ kind: fc.constant('dtype' as const), nth: fc.nat(),
    value: fc.constantFrom('F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'f32', '', 5, null, ['F32']) }),
  fc.record({ kind: fc.constant('shape' as const), nth: fc.nat(),
    value: fc.oneof(fc.constantFrom(...SHAPES), fc.array(dimension, { maxLength: 5 }), fc.constantFrom(null, 'x', {}, [[]])) }),
  // overlapping tensor offsets: another tensor's span; spans shifted, reversed, past the end, not integers
  fc.record({ kind: fc.constant('offsets' as const), nth: fc.nat(),
    value: fc.oneof(
      fc.constantFrom(...OFFSETS),
      fc.nat({ max: OFFSETS.length - 1 }).chain((j) => fc.integer({ min: -64, max: 64 }).map((d) => OFFSETS[j].map((o) => o + d))),
      fc.tuple(fc.nat({ max: DATA.length + 8 }), fc.nat({ max: DATA.length + 8 })).map(([a, b]) => [a, b]),
      fc.array(weirdNumber, { maxLength: 3 }),
    ) }),
  fc.record({ kind: fc.constant('drop' as const), nth: fc.nat() }),
  fc.record({ kind: fc.constant('add' as const), key: fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 12 })),
    value: fc.record({ dtype: fc.constantFrom('F32', 'F16'), shape: fc.array(fc.integer({ min: 0, max: 8 }), { maxLength: 3 }),
      data_offsets: fc.constantFrom(...OFFSETS) }) }),
  fc.record({ kind: fc.constant('metadata' as const),
    value: fc.oneof(fc.constantFrom({ format: 'pt' }, { a: 1 }, [], 'x', null, { a: { b: 'c' } }), fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }))) }),
  fc.record({ kind: fc.constant('rename' as const), nth: fc.nat(), key: fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 12 })) }),
);

function applyEdits(edits: Edit[]): Record<string, any> {
  const header: Record<string, any> = structuredClone(HEADER);
  for (const edit of edits) {
    const keys = Object.keys(header).filter((k) => k !== '__metadata__');
    const key = 'nth' in edit && keys.length > 0 ? keys[edit.nth % keys.length] : undefined;
    switch (edit.kind) {
      case 'dtype': if (key) header[key].dtype = edit.value; break;
      case 'shape': if (key) header[key].shape = edit.value; break;
      case 'offsets': if (key) header[key].data_offsets = edit.value; break;
      case 'drop': if (key) delete header[key]; break;
      case 'add': header[edit.key] = edit.value; break;
      case 'metadata': header.__metadata__ = edit.value; break;
      case 'rename': if (key) { const v = header[key]; delete header[key]; header[edit.key] = v; } break;
    }
  }
  return header;
}

test('header: wrong dtypes, bad shapes, overlapping and out-of-range offsets, metadata (loaded and run)', async () => {
  await fc.assert(fc.asyncProperty(fc.array(editArb, { minLength: 1, maxLength: 3 }), async (edits) => {
    const bytes = serialise(applyEdits(edits), DATA);
    const label = `header ${JSON.stringify(edits).slice(0, 300)}`;
    expectClean(tally, label, bytes.length, () => readSafetensors(bytes, 'fuzz.safetensors'), validStateDict);
    await expectCleanAsync(tally, label, bytes.length, () => loadModel(bytes, 'fuzz.safetensors', wasm), modelRuns);
  }), fcOptions(fuzzRuns(BUDGET.header, TOTAL)));
});

test('header JSON: deep nesting, huge numbers, non-UTF-8, duplicate keys, not an object', () => {
  const pathological = fc.oneof(
    fc.integer({ min: 1, max: 200_000 }).map((n) => `{"a":${'['.repeat(n)}${']'.repeat(n)}}`),
    fc.integer({ min: 1, max: 200_000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
    fc.constantFrom('[]', 'null', '1', '"x"', '{', '{"a":1,"a":2}', `{"x":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}}`,
      `{"x":{"dtype":"F32","shape":[${2 ** 40},${2 ** 40}],"data_offsets":[0,0]}}`, '\uFEFF{}'),
    fc.string({ maxLength: 64 }),
  );
  fc.assert(fc.property(pathological, fc.boolean(), (header, invalidUtf8) => {
    let bytes = serialise(undefined, DATA.subarray(0, 64), header);
    if (invalidUtf8 && bytes.length > 9) { bytes = Uint8Array.from(bytes); bytes[9] = 0xff; }
    expectClean(tally, `json ${header.slice(0, 60)} (${header.length} chars)`, bytes.length,
      () => readSafetensors(bytes, 'fuzz.safetensors'), validStateDict);
  }), fcOptions(fuzzRuns(BUDGET.json, TOTAL)));
});

test('the unmutated model still loads (the fuzz starts from a valid file)', async () => {
  const { model } = await loadModel(MODEL, 'model.safetensors', wasm);
  assert.is(model.forward(new Float32Array(3 * 64 * 64)).length, 10);
});

test.after(() => tally.report());

test.run();

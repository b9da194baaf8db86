// Property-based fuzzing of the .pth reader (zip container + restricted unpickler) and of everything a
// checkpoint goes through before it runs (config inference, packing, the kernels). Property: a valid result
// or a one-line VimedgeError; never another exception, a hang, a wasm trap or disproportionate memory.
// Complements test/pth.test.ts and test/pickle.test.ts (truncation at every byte, random corruption, the
// hostile corpus) with mutations aimed at the structure: zip fields, pickle opcodes, dtypes, views, nesting.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { unzipSync, zipSync } from 'fflate';
import { readPth } from '../src/formats/pth.js';
import { unpickle } from '../src/formats/pickle.js';
import { loadModel } from '../src/model/model-file.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';
import {
  applyMutations, describeMutations, expectClean, expectCleanAsync, fcOptions, fuzzRuns, modelRuns,
  mutationsArb, pickleLayout, pickleOps, Tally, truncationPoints, validStateDict, zipEntries, zipLayout, type Layout,
  type PickleOp,
} from './helpers/fuzz.js';

const tally = new Tally('pth');
const MODEL = new Uint8Array(readFileSync('test/fixtures/small/small/model.pth'));
const TRAINING = new Uint8Array(readFileSync('test/fixtures/readers/tiny-vim-training.pth'));
const VIEWS = new Uint8Array(readFileSync('test/fixtures/readers/views.pth'));
const wasm = await readKernelWasm();
// The CI budget of each property; bench/fuzz.ts scales them to its --runs.
const BUDGET = { zip: 500, aliases: 200, pickle: 400, views: 300 };
const TOTAL = BUDGET.zip + BUDGET.aliases + BUDGET.pickle + BUDGET.views;

const input = new Float32Array(3 * 64 * 64).map((_, i) => Math.sin(i) * 2);
let nonFiniteLogits = 0;

// --- the zip container: every header, size, offset and count field, every boundary ------------------------

const zip = zipLayout(MODEL);

test('zip container: truncation at every section boundary', () => {
  for (const at of truncationPoints({ bytes: MODEL, layout: zip })) {
    expectClean(tally, `truncate ${at}`, at, () => readPth(MODEL.subarray(0, at), 'cut.pth'), validStateDict);
  }
});

test('zip container: oversized length fields, bit flips, insertions and deletions', () => {
  fc.assert(fc.property(mutationsArb(MODEL, zip), (mutations) => {
    const bytes = applyMutations(MODEL, zip, mutations);
    expectClean(tally, `zip: ${describeMutations(mutations, zip)}`, bytes.length,
      () => readPth(bytes, 'fuzz.pth'), validStateDict);
  }), fcOptions(fuzzRuns(BUDGET.zip, TOTAL)));
});

// --- central-directory entries aliasing other entries' bytes (N entries on one blob cost N copies) --------------

const { entries: ZIP_ENTRIES } = zipEntries(MODEL);

/** Central entry `from` re-pointed at entry `to`'s local header (plus `shift` bytes), with `to`'s sizes. */
interface Alias { from: number; to: number; shift: number }

const aliasesArb: fc.Arbitrary<Alias[]> = fc.array(fc.record({
  from: fc.nat(), to: fc.nat(), shift: fc.oneof(fc.constant(0), fc.constantFrom(-30, -1, 1, 30, 64, 4096), fc.integer({ min: -200, max: 200 })),
}), { minLength: 1, maxLength: 12 });

function applyAliases(aliases: Alias[]): Uint8Array {
  const bytes = MODEL.slice();
  const view = new DataView(bytes.buffer);
  for (const { from, to, shift } of aliases) {
    const a = ZIP_ENTRIES[from % ZIP_ENTRIES.length], b = ZIP_ENTRIES[to % ZIP_ENTRIES.length];
    view.setUint32(a.centralHeader + 42, Math.max(0, b.localHeader + shift), true);
    view.setUint32(a.centralHeader + 20, b.dataEnd - b.dataStart, true);
    view.setUint32(a.centralHeader + 24, b.dataEnd - b.dataStart, true);
  }
  return bytes;
}

test('zip container: central-directory entries aliasing or overlapping other entries', () => {
  fc.assert(fc.property(aliasesArb, (aliases) => {
    const bytes = applyAliases(aliases);
    const label = `aliases ${aliases.map((a) => `${a.from % ZIP_ENTRIES.length}->${a.to % ZIP_ENTRIES.length}${a.shift ? `+${a.shift}` : ''}`).join(' ')}`;
    expectClean(tally, label, bytes.length, () => readPth(bytes, 'alias.pth'), validStateDict);
  }), fcOptions(fuzzRuns(BUDGET.aliases, TOTAL)));
});

// --- the pickle inside: opcodes, dtypes, views, nesting, memo ----------------------------------------------

const entries = unzipSync(MODEL);
const PKL_NAME = Object.keys(entries).find((n) => n.endsWith('/data.pkl'))!;
const PKL = entries[PKL_NAME];
const OPS = pickleOps(PKL);
const PKL_LAYOUT = pickleLayout(PKL);

const STORAGE_TYPES = ['FloatStorage', 'HalfStorage', 'BFloat16Storage', 'DoubleStorage', 'LongStorage', 'IntStorage',
  'ShortStorage', 'CharStorage', 'ByteStorage', 'BoolStorage', 'UntypedStorage', 'ComplexFloatStorage', 'Storage'];
const enc = new TextEncoder();
const INT_OPS = OPS.filter((o) => o.op === 0x4b || o.op === 0x4d || o.op === 0x4a);
const STR_OPS = OPS.filter((o) => o.op === 0x58);
const STORAGE_OPS = OPS.filter((o) => o.op === 0x63 && new TextDecoder().decode(PKL.subarray(o.argAt, o.end)).endsWith('Storage\n'));
const KEYS = STR_OPS.map((o) => new TextDecoder().decode(PKL.subarray(o.argAt + 4, o.end)));

type PickleEdit =
  | { kind: 'bytes'; mutations: Parameters<typeof applyMutations>[2] }
  | { kind: 'dtype'; nth: number; to: string }
  | { kind: 'int'; nth: number; value: number }
  | { kind: 'string'; nth: number; to: string }
  | { kind: 'nest'; op: number; depth: number; how: 'marks' | 'lists' | 'dicts' | 'tuples' }
  | { kind: 'memo'; op: number; index: number; get: boolean };

const binint = (v: number) => { const b = new Uint8Array(5); b[0] = 0x4a; new DataView(b.buffer).setInt32(1, v, true); return b; };
const binunicode = (s: string) => { const t = enc.encode(s); const b = new Uint8Array(5 + t.length); b[0] = 0x58; new DataView(b.buffer).setUint32(1, t.length, true); b.set(t, 5); return b; };

function replaceOp(pkl: Uint8Array, op: PickleOp, replacement: Uint8Array): Uint8Array {
  const out = new Uint8Array(pkl.length - (op.end - op.at) + replacement.length);
  out.set(pkl.subarray(0, op.at));
  out.set(replacement, op.at);
  out.set(pkl.subarray(op.end), op.at + replacement.length);
  return out;
}

function insertAt(pkl: Uint8Array, at: number, insertion: Uint8Array): Uint8Array {
  const out = new Uint8Array(pkl.length + insertion.length);
  out.set(pkl.subarray(0, at));
  out.set(insertion, at);
  out.set(pkl.subarray(at), at + insertion.length);
  return out;
}

function nesting(depth: number, how: 'marks' | 'lists' | 'dicts' | 'tuples'): Uint8Array {
  switch (how) {
    case 'marks': return new Uint8Array(depth).fill(0x28);
    // depth nested lists, then popped so the stream stays balanced: [[[...]]] POP
    case 'lists': return Uint8Array.from([...new Array(depth).fill(0x5d), ...new Array(depth - 1).fill(0x61), 0x30]);
    case 'dicts': return Uint8Array.from([...new Array(depth).fill(0x7d), 0x30]);
    case 'tuples': return Uint8Array.from([0x29, ...new Array(depth).fill(0x85), 0x30]);
  }
}

function applyPickleEdit(edit: PickleEdit): Uint8Array {
  switch (edit.kind) {
    case 'bytes': return applyMutations(PKL, PKL_LAYOUT, edit.mutations);
    case 'dtype': {
      const op = STORAGE_OPS[edit.nth % STORAGE_OPS.length];
      return replaceOp(PKL, op, Uint8Array.from([0x63, ...enc.encode(`torch\n${edit.to}\n`)]));
    }
    case 'int': return replaceOp(PKL, INT_OPS[edit.nth % INT_OPS.length], binint(edit.value));
    case 'string': return replaceOp(PKL, STR_OPS[edit.nth % STR_OPS.length], binunicode(edit.to));
    case 'nest': return insertAt(PKL, OPS[1 + (edit.op % (OPS.length - 2))].at, nesting(edit.depth, edit.how));
    case 'memo': {
      const b = new Uint8Array(5);
      b[0] = edit.get ? 0x6a : 0x72;
      new DataView(b.buffer).setUint32(1, edit.index, true);
      return insertAt(PKL, OPS[2 + (edit.op % (OPS.length - 3))].at, edit.get ? Uint8Array.from([...b, 0x30]) : b);
    }
  }
}

const pickleEditArb: fc.Arbitrary<PickleEdit> = fc.oneof(
  fc.record({ kind: fc.constant('bytes' as const), mutations: mutationsArb(PKL, PKL_LAYOUT, 3) }),
  // wrong dtypes: a storage of one type relabelled as another (sizes then disagree, or ints reach the model)
  fc.record({ kind: fc.constant('dtype' as const), nth: fc.nat(), to: fc.constantFrom(...STORAGE_TYPES) }),
  // shapes, strides, storage offsets and numels: zero, negative, huge, or another tensor's (overlapping views)
  fc.record({ kind: fc.constant('int' as const), nth: fc.nat(),
    value: fc.oneof(fc.constantFrom(0, 1, -1, 2, 0x7fffffff, -0x80000000, 65536, 1 << 24), fc.integer({ min: -4, max: 5000 })) }),
  // storage keys pointing at another storage (shared and overlapping), missing entries, odd strings
  fc.record({ kind: fc.constant('string' as const), nth: fc.nat(),
    to: fc.oneof(fc.constantFrom(...KEYS), fc.constantFrom('', '../data.pkl', '99', 'data.pkl', 'x'.repeat(300)), fc.string({ maxLength: 8 })) }),
  // deep nesting: beyond the MARK limit, and 10^5 nested containers built without recursion
  fc.record({ kind: fc.constant('nest' as const), op: fc.nat(), how: fc.constantFrom('marks' as const, 'lists' as const, 'dicts' as const, 'tuples' as const),
    depth: fc.oneof(fc.integer({ min: 1, max: 2000 }), fc.constantFrom(999, 1000, 1001, 100_000)) }),
  // huge memo indices: stored far out, or read where nothing was stored
  fc.record({ kind: fc.constant('memo' as const), op: fc.nat(), get: fc.boolean(),
    index: fc.oneof(fc.constantFrom(0xffffffff, 0x80000000, 0x7fffffff, 1 << 20), fc.nat()) }),
);

function describeEdit(edit: PickleEdit): string {
  if (edit.kind === 'bytes') return `pickle bytes: ${describeMutations(edit.mutations, PKL_LAYOUT)}`;
  return `pickle ${JSON.stringify(edit).slice(0, 200)}`;
}

test('pickle: every opcode boundary truncated inside a valid archive', () => {
  for (const op of OPS) {
    const files = { ...entries, [PKL_NAME]: PKL.subarray(0, op.at) };
    const bytes = zipSync(files, { level: 0 });
    expectClean(tally, `pickle truncated at op ${op.at}`, bytes.length, () => readPth(bytes, 'cut.pth'), validStateDict);
  }
});

test('pickle: wrong dtypes, bad views, shared storages, deep nesting, huge memo indices (loaded and run)', async () => {
  await fc.assert(fc.asyncProperty(pickleEditArb, async (edit) => {
    const pkl = applyPickleEdit(edit);
    const bytes = zipSync({ ...entries, [PKL_NAME]: pkl }, { level: 0 });
    const label = describeEdit(edit);
    // The unpickler on its own, then the whole path to a running model.
    expectClean(tally, `unpickle ${label}`, pkl.length, () => unpickle(pkl, 'fuzz.pkl'));
    await expectCleanAsync(tally, label, bytes.length, () => loadModel(bytes, 'fuzz.pth', wasm), (loaded) => {
      if (!modelRuns(loaded)) nonFiniteLogits++;
    });
  }), fcOptions(fuzzRuns(BUDGET.pickle, TOTAL)));
});

// --- strided views and dtypes of the reader fixtures (torch 1.13 archives) ---------------------------------

const SMALL_FIXTURES = [TRAINING, VIEWS].map((bytes) => {
  const files = unzipSync(bytes);
  const name = Object.keys(files).find((n) => n.endsWith('/data.pkl'))!;
  const pkl = files[name];
  return { files, name, pkl, ints: pickleOps(pkl).filter((o) => o.op === 0x4b || o.op === 0x4d || o.op === 0x4a), layout: zipLayout(bytes), bytes };
});

test('views and training checkpoints: view geometry rewritten, bytes mutated', () => {
  fc.assert(fc.property(
    fc.nat({ max: SMALL_FIXTURES.length - 1 }),
    fc.array(fc.tuple(fc.nat(), fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(0x7fffffff, 1 << 20, -1))), { minLength: 1, maxLength: 4 }),
    fc.boolean(),
    (which, edits, alsoBytes) => {
      const f = SMALL_FIXTURES[which];
      let pkl: Uint8Array = f.pkl;
      for (const [nth, value] of edits) {
        const ops = pickleOps(pkl).filter((o) => o.op === 0x4b || o.op === 0x4d || o.op === 0x4a);
        if (ops.length > 0) pkl = replaceOp(pkl, ops[nth % ops.length], binint(value));
      }
      let bytes: Uint8Array = zipSync({ ...f.files, [f.name]: pkl }, { level: 0 });
      let label = `fixture ${which} ints ${JSON.stringify(edits)}`;
      if (alsoBytes) {
        const layout: Layout = zipLayout(bytes);
        const mutations = fc.sample(mutationsArb(bytes, layout, 2), { seed: edits[0][0], numRuns: 1 })[0];
        bytes = applyMutations(bytes, layout, mutations);
        label += ` + ${describeMutations(mutations, layout)}`;
      }
      expectClean(tally, label, bytes.length, () => readPth(bytes, 'fuzz.pth'), validStateDict);
    },
  ), fcOptions(fuzzRuns(BUDGET.views, TOTAL)));
});

test('the unmutated model still loads (the fuzz starts from a valid file)', async () => {
  const { model } = await loadModel(MODEL, 'model.pth', wasm);
  assert.ok(model.forward(input).every(Number.isFinite));
});

test.after(() => {
  tally.report();
  if (nonFiniteLogits > 0) console.log(`fuzz pth: ${nonFiniteLogits} accepted models gave non-finite logits`);
});

test.run();

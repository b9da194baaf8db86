// Property-based fuzzing of the .vimq reader and loader. A .vimq comes from the network as often as from
// `vimedge convert`, and SHA-256 only proves the file is what its writer wrote: a hostile writer re-signs.
// So besides plain corruption (which the checksum refuses), the mutated files are re-signed and the
// metadata rewritten, to reach every check behind the checksum: header lengths, the tensor table, the config,
// the labels and the preprocessing, then the kernels. Property: a model that runs (right number of finite
// logits, labels that exist) or a one-line VimedgeError; never another exception, a wasm trap, a hang or an
// allocation beyond what the file justifies. test/vimq.test.ts has one case per integrity rule.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { convertCheckpoint } from '../src/convert/checkpoint.js';
import type { ModelMetadata } from '../src/model/contract.js';
import { readVimq, writeVimq, VIMQ_VERSION } from '../src/formats/vimq.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';
import { createClassifier, rankLabels, type ImageClassifier } from '../src/classifier.js';
import type { RawImage } from '../src/preprocess/raw-image.js';
import type { ImageHost } from '../src/hosts/image-input.js';
import { fail } from '../src/errors.js';
import {
  expectCleanAsync, fcOptions, fuzzRuns, invalid, mutate, resignVimq, seedMutationsArb, Tally, truncationPoints,
  type Layout,
} from './helpers/fuzz.js';
import { rejects } from './helpers/rejects.js';
import { readFloatModel } from '../src/model/model-file.js';
import type { FloatModel } from '../src/convert/float-model.js';
import { describeRecipe } from '../src/quant/recipe.js';

const tally = new Tally('vimq');
const wasm = await readKernelWasm();
const LABELS = Array.from({ length: 10 }, (_, i) => `label ${i}`);
const FILE = await convertCheckpoint(new Uint8Array(readFileSync('test/fixtures/small/small/model.pth')), 'model.pth', { labels: LABELS });
const GRAY = await convertCheckpoint(new Uint8Array(readFileSync('test/fixtures/small/small-gray/model.pth')), 'model.pth');
const BUDGET = { raw: 300, resigned: 400, metadata: 700, readers: 300 };
const TOTAL = BUDGET.raw + BUDGET.resigned + BUDGET.metadata + BUDGET.readers;

// An RGB image of an odd size: the whole classify path (resize, crop, normalise, forward) runs on it.
const IMAGE = { width: 37, height: 23, channels: 3 as const, data: new Uint8Array(37 * 23 * 3).map((_, i) => (i * 31) & 0xff) };

function layoutOf(file: Uint8Array): Layout {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const json = view.getUint32(8, true);
  const dataOffset = view.getUint32(12, true);
  const metadata = JSON.parse(new TextDecoder().decode(file.subarray(64, 64 + json))) as ModelMetadata;
  const boundaries = [0, 4, 8, 12, 16, 24, 56, 64, 64 + json, dataOffset, file.length];
  for (const t of metadata.tensors) boundaries.push(dataOffset + t.offset, dataOffset + t.offset + t.bytes);
  return {
    boundaries,
    fields: [
      { at: 4, width: 4, littleEndian: true, name: 'version' },
      { at: 8, width: 4, littleEndian: true, name: 'metadata length' },
      { at: 12, width: 4, littleEndian: true, name: 'data offset' },
      { at: 16, width: 8, littleEndian: true, name: 'file length' },
    ],
  };
}

const FIXTURES = [FILE, GRAY].map((bytes) => ({ bytes, layout: layoutOf(bytes) }));

/**
 * What a loaded model must do: classify an image into one of its labels (the classifier refuses non-finite
 * logits with a VimedgeError, a clean rejection).
 */
async function validLoaded(classifier: ImageClassifier<RawImage>): Promise<void> {
  try {
    const logits = await classifier.logits(IMAGE);
    if (logits.length !== classifier.info.config.numClasses) invalid(`${logits.length} logits`);
    for (const p of rankLabels(logits, classifier.info.labels, 3)) {
      if (typeof p.label !== 'string' || !(p.score >= 0 && p.score <= 1)) invalid(`prediction ${JSON.stringify(p)}`);
    }
  } finally {
    classifier.dispose();
  }
}

/** Images are given as pixels here: nothing to read or decode. */
const PIXELS_ONLY: ImageHost = { read: () => fail('BAD_ARGUMENT', 'no reading'), decode: () => fail('BAD_ARGUMENT', 'no decoding'), forms: 'pixels' };
const load = (bytes: Uint8Array) => () => createClassifier<RawImage>({ model: bytes, name: 'fuzz.vimq', kernels: wasm, images: PIXELS_ONLY, limits: {} });

test('truncation at every section boundary, plain and re-signed', async () => {
  for (const { bytes, layout } of FIXTURES) {
    for (const at of truncationPoints({ bytes, layout })) {
      const cut = bytes.slice(0, at);
      await expectCleanAsync(tally, `truncate ${at}`, at, load(cut), validLoaded);
      await expectCleanAsync(tally, `truncate ${at} re-signed`, at, load(resignVimq(cut)), validLoaded);
    }
  }
});

test('plain corruption: length fields, bit flips, insertions, deletions (the checksum or a length check refuses)', async () => {
  await fc.assert(fc.asyncProperty(seedMutationsArb(FIXTURES),
    async (drawn) => {
      const { which, bytes, description } = mutate(FIXTURES, drawn);
      const original = FIXTURES[which].bytes;
      const identical = bytes.length === original.length && bytes.every((b, i) => b === original[i]);
      await expectCleanAsync(tally, `raw ${which}: ${description}`, bytes.length, load(bytes), async (classifier) => {
        if (!identical) invalid('a modified file passed the checksum');
        await validLoaded(classifier);
      });
    }), fcOptions(fuzzRuns(BUDGET.raw, TOTAL)));
});

test('re-signed corruption: the checks behind the checksum', async () => {
  await fc.assert(fc.asyncProperty(seedMutationsArb(FIXTURES),
    async (drawn) => {
      const { which, bytes: mutated, description } = mutate(FIXTURES, drawn);
      const bytes = resignVimq(mutated);
      await expectCleanAsync(tally, `re-signed ${which}: ${description}`, bytes.length, load(bytes), validLoaded);
    }), fcOptions(fuzzRuns(BUDGET.resigned, TOTAL)));
});

// --- metadata rewritten by a hostile writer (valid JSON, valid checksum) ------------------------------------

const { metadata: META, data: DATA } = await readVimq(FILE);
const CONFIG_KEYS = Object.keys(META.config) as (keyof ModelMetadata['config'])[];
const PRE_KEYS = Object.keys(META.preprocess);
const TENSOR_KEYS = ['name', 'dtype', 'shape', 'layout', 'offset', 'bytes'];
const odd = fc.constantFrom(0, -1, 1, 2, 3, 4, 8, 16, 17, 64, 1.5, 1e9, 2 ** 31, 2 ** 53, -0, null, 'x', '16', [], {}, true, 1e-300);
const near = (v: unknown) => (typeof v === 'number' ? fc.integer({ min: -3, max: 3 }).map((d) => v + d) : fc.constant(v));

type MetaEdit =
  | { at: 'config'; key: string; value: unknown }
  | { at: 'preprocess'; key: string; value: unknown }
  | { at: 'tensor'; nth: number; key: string; value: unknown }
  | { at: 'tensors'; op: 'drop' | 'duplicate' | 'swap-offsets' | 'reverse'; nth: number; other: number }
  | { at: 'labels'; value: unknown }
  | { at: 'top'; key: string; value: unknown };

const metaEditArb: fc.Arbitrary<MetaEdit> = fc.oneof(
  fc.constantFrom(...CONFIG_KEYS).chain((key) => fc.record({ at: fc.constant('config' as const), key: fc.constant(key),
    value: fc.oneof(odd, near(META.config[key]), fc.constantFrom(...CONFIG_KEYS.map((k) => META.config[k]))) })),
  fc.constantFrom(...PRE_KEYS).chain((key) => fc.record({ at: fc.constant('preprocess' as const), key: fc.constant(key),
    value: fc.oneof(odd, near((META.preprocess as any)[key]), fc.constantFrom(1e6, 65536, 64, 63, 'nearest', 'bilinear', [0.5], [0, 0, 0], [1, 1, NaN], [1e-30, 1, 1])) })),
  fc.record({ at: fc.constant('tensor' as const), nth: fc.nat(), key: fc.constantFrom(...TENSOR_KEYS),
    value: fc.oneof(odd, fc.constantFrom('f16', 'i8', 'kn8', 'plain', 'nk', 'cls_token', 'head.bias', [1], [0], [2 ** 40], [64, 32])) }),
  fc.record({ at: fc.constant('tensors' as const), op: fc.constantFrom('drop' as const, 'duplicate' as const, 'swap-offsets' as const, 'reverse' as const),
    nth: fc.nat(), other: fc.nat() }),
  fc.record({ at: fc.constant('labels' as const),
    value: fc.oneof(fc.constantFrom([], ['a'], LABELS.slice(0, 9), [...LABELS, 'extra'], null, 'abc', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [...LABELS.slice(0, 9), '']),
      fc.array(fc.string({ maxLength: 6 }), { minLength: 10, maxLength: 10 })) }),
  fc.record({ at: fc.constant('top' as const), key: fc.constantFrom('weights', 'format', 'quantization', 'config', 'preprocess', 'labels', 'tensors', 'source'),
    value: fc.constantFrom('f32', 'int8', 'f16', 'w8a8', null, {}, [], 'vimq', { scheme: 'x' }, { file: 'm.pth', format: 'onnx' }, { file: 7, format: 'pth' },
      { method: 'rtn', bits: 'w8a8', weightBits: 8, activationBits: 8, simulated: false },
      { method: 'rtn', bits: 'w8a8', weightBits: 8, activationBits: 8, simulated: false, weights: {}, activations: {}, transforms: 'x', calibration: null }) }),
);

function applyMetaEdits(edits: MetaEdit[]): ModelMetadata {
  const m = structuredClone(META) as any;
  for (const e of edits) {
    switch (e.at) {
      case 'config': m.config && (m.config[e.key] = e.value); break;
      case 'preprocess': m.preprocess && (m.preprocess[e.key] = e.value); break;
      case 'labels': m.labels = e.value; break;
      case 'top': m[e.key] = e.value; break;
      case 'tensor': if (Array.isArray(m.tensors) && m.tensors.length) m.tensors[e.nth % m.tensors.length][e.key] = e.value; break;
      case 'tensors': {
        const t = m.tensors;
        if (!Array.isArray(t) || t.length === 0) break;
        const i = e.nth % t.length, j = e.other % t.length;
        if (e.op === 'drop') t.splice(i, 1);
        if (e.op === 'duplicate') t.push({ ...t[i] });
        if (e.op === 'swap-offsets') [t[i].offset, t[j].offset] = [t[j].offset, t[i].offset];
        if (e.op === 'reverse') t.reverse();
        break;
      }
    }
  }
  return m;
}

/** The edited metadata written and signed; undefined where the writer itself refuses it (tensors not a list). */
async function signed(edits: MetaEdit[]): Promise<Uint8Array | undefined> {
  try {
    return await writeVimq(applyMetaEdits(edits) as any, DATA);
  } catch {
    return undefined;
  }
}

test('metadata rewritten and re-signed: config, preprocessing, labels, tensor table (loaded, then an image classified)', async () => {
  await fc.assert(fc.asyncProperty(fc.array(metaEditArb, { minLength: 1, maxLength: 3 }), async (edits) => {
    const bytes = await signed(edits);
    if (bytes) await expectCleanAsync(tally, `metadata ${JSON.stringify(edits).slice(0, 300)}`, bytes.length, load(bytes), validLoaded);
  }), fcOptions(fuzzRuns(BUDGET.metadata, TOTAL)));
});

/** What inspect, quantize and outliers need of a model they read: a config, labels for it, a printable recipe. */
function validRead(m: FloatModel): void {
  const { config, labels, quantization, source } = m.metadata;
  if (labels.length !== config.numClasses) invalid(`${labels.length} labels for ${config.numClasses} classes`);
  if (typeof source.file !== 'string') invalid('source without a file');
  describeRecipe(quantization);
}

test('metadata rewritten and re-signed, read as inspect / quantize / outliers read it (no loader behind)', async () => {
  await fc.assert(fc.asyncProperty(fc.array(metaEditArb, { minLength: 1, maxLength: 3 }), async (edits) => {
    const bytes = await signed(edits);
    if (bytes) await expectCleanAsync(tally, `read ${JSON.stringify(edits).slice(0, 300)}`, bytes.length, () => readFloatModel(bytes, 'fuzz.vimq'), validRead);
  }), fcOptions(fuzzRuns(BUDGET.readers, TOTAL)));
});

// --- length fields are checked against the file before anything is allocated --------------------------------

/** A file that records every copy readVimq makes of it (the only way it allocates in proportion to the file). */
class CopyRecorder extends Uint8Array {
  copies: number[] = [];
  override slice(start?: number, end?: number): Uint8Array<ArrayBuffer> {
    const copy = new Uint8Array(this.buffer, this.byteOffset, this.length).slice(start, end);
    this.copies.push(copy.length);
    return copy;
  }
}

/** A large valid-looking file (8 MB of zero data after the real header) whose lengths we then break. */
function bigFile(): CopyRecorder {
  const file = new CopyRecorder(8 << 20);
  file.set(FILE.subarray(0, 64 + new DataView(FILE.buffer, FILE.byteOffset).getUint32(8, true)));
  new DataView(file.buffer).setBigUint64(16, BigInt(file.length), true);
  return file;
}

test('a length field past the end of the file is refused before any allocation', async () => {
  const cases: [(v: DataView) => void, RegExp][] = [
    [(v) => v.setUint32(8, 0xffffffff, true), /metadata length 4294967295 .* out of range/],
    [(v) => v.setUint32(12, 0xffffffc0, true), /data offset 4294967232 out of range/],
    [(v) => v.setUint32(12, (8 << 20) + 64, true), /out of range/],
    [(v) => v.setBigUint64(16, 2n ** 63n, true), /header says 9223372036854775808/],
    [(v) => v.setBigUint64(16, BigInt((8 << 20) + 1), true), /truncated or padded/],
  ];
  for (const [edit, pattern] of cases) {
    const file = bigFile();
    edit(new DataView(file.buffer));
    const before = process.memoryUsage().arrayBuffers;
    await rejects(readVimq(file, 'big.vimq'), 'BAD_MODEL_FILE', pattern);
    assert.equal(file.copies, [], `${pattern}: copies of ${file.copies} bytes made before refusing`);
    assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, `${pattern}: ArrayBuffers grew`);
  }
  // The control: a file whose lengths are fine is hashed where it lies (node:crypto, no copy), then refused
  // by its checksum.
  const control = bigFile();
  const before = process.memoryUsage().arrayBuffers;
  await rejects(readVimq(control, 'big.vimq'), 'BAD_MODEL_FILE', /checksum mismatch/);
  assert.equal(control.copies, [], `copies: ${control.copies}`);
  assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'ArrayBuffers grew: the file was copied for its checksum');
});

test('the version check comes before the checksum: a newer file says so even if corrupt', async () => {
  const file = FILE.slice();
  new DataView(file.buffer).setUint32(4, VIMQ_VERSION + 1, true);
  file[200] ^= 1;
  await rejects(readVimq(file, 'big.vimq'), 'BAD_MODEL_FILE', new RegExp(`big\\.vimq: format version ${VIMQ_VERSION + 1} is newer than this runtime reads \\(${VIMQ_VERSION}\\); upgrade vimedge`));
});

test('the unmutated files load and classify (the fuzz starts from valid files)', async () => {
  for (const { bytes } of FIXTURES) await validLoaded(await load(bytes)());
});

test.after(() => tally.report());

test.run();

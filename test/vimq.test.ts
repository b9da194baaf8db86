// The .vimq container: round trip, and every integrity failure refused with an error that says which.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { golden, SMALL_CONFIGS } from './helpers/golden.js';
import { loadModel, loadModelFrom, readFloatModel, readModel, type FileReader } from '../src/model/model-file.js';
import { convertCheckpoint } from '../src/convert/checkpoint.js';
import { isVimq, type ModelMetadata } from '../src/model/contract.js';
import { readVimq, writeVimq, VIMQ_VERSION } from '../src/formats/vimq.js';
import { readCheckpoint } from '../src/formats/checkpoint.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';
import type { ErrorCode } from '../src/errors.js';
import { rejects } from './helpers/rejects.js';

const g = golden(SMALL_CONFIGS[0])!;
const wasmP = readKernelWasm();
const fileP = convertCheckpoint(g.bytes('model.pth'), 'model.pth', { labels: 'abcdefghij'.split('') });

/** Bytes as a file read piece by piece (what loadModelFrom reads from; src/hosts/node.ts for real files). */
const asFile = (bytes: Uint8Array): FileReader => ({
  size: bytes.length,
  read: async (into, position) => { into.set(bytes.subarray(position, position + into.length)); },
});

/** Loading refuses the file with `code`, its message matching `pattern`, from bytes and read piece by piece. */
const refused = async (bytes: Uint8Array, pattern: RegExp, code: ErrorCode = 'BAD_MODEL_FILE') => {
  await rejects(loadModel(bytes, 'm.vimq', await wasmP), code, pattern);
  await rejects(loadModelFrom(asFile(bytes), 'm.vimq', await wasmP), code, pattern);
};

/** Rewrites a file's metadata and re-checksums it, as a buggy or hostile writer could. */
async function withMetadata(edit: (m: ModelMetadata) => void): Promise<Uint8Array> {
  const { metadata, data } = await readVimq(await fileP);
  edit(metadata);
  return writeVimq(metadata, data);
}

test('round trip: a converted checkpoint gives the same logits as the checkpoint itself', async () => {
  const wasm = await readKernelWasm();
  const input = g.f32(g.manifest.inputs[0].file);
  const fromVimq = (await loadModel(await fileP, 'm.vimq', wasm)).model.forward(input);
  const fromPth = (await loadModel(g.bytes('model.pth'), 'model.pth', wasm)).model.forward(input);
  assert.equal(Array.from(fromVimq), Array.from(fromPth));
  // Read piece by piece, the data section straight into the heap: the same model.
  const fromFile = (await loadModelFrom(asFile(await fileP), 'm.vimq', wasm)).model.forward(input);
  assert.equal(Array.from(fromFile), Array.from(fromPth));
  const { metadata } = await readVimq(await fileP);
  assert.equal(metadata.labels, 'abcdefghij'.split(''));
  assert.is(metadata.config.numTokens, 17);
  assert.is(metadata.config.clsIndex, 8);
});

test('a checkpoint read in memory is the model its .vimq holds: same metadata, same bytes, same fp32 tensors', async () => {
  const pth = g.bytes('model.pth');
  const options = { labels: 'abcdefghij'.split('') };
  const fromVimq = await readVimq(await fileP);
  const inMemory = await readModel(pth, 'model.pth', options);
  assert.equal(inMemory.metadata, fromVimq.metadata);
  assert.ok(Buffer.from(inMemory.data).equals(fromVimq.data));
  // Unpacking the file gives back the checkpoint's tensors exactly (kn8 weights transposed back, padding dropped).
  const unpacked = await readFloatModel(await fileP, 'm.vimq');
  const direct = await readFloatModel(pth, 'model.pth');
  assert.equal([...unpacked.tensors.keys()], [...direct.tensors.keys()]);
  for (const [name, values] of direct.tensors) assert.equal(Array.from(unpacked.tensors.get(name)!), Array.from(values), name);
  const head = direct.tensors.get('head.weight')!;
  assert.equal(Array.from(head), Array.from(readCheckpoint(pth, 'model.pth').get('head.weight')!.data));
});

test('the source format is read off the content: a .safetensors whose header length starts with 0x50 (zip\'s P) is one', async () => {
  const bytes = golden(SMALL_CONFIGS[2])!.bytes('model.safetensors');
  assert.is(bytes[0], 0x50);
  const fileAndFormat = async (b: Uint8Array, name: string) => {
    const { file, format } = (await readModel(b, name)).metadata.source;
    return { file, format };
  };
  assert.equal(await fileAndFormat(bytes, 'model.safetensors'), { file: 'model.safetensors', format: 'safetensors' });
  assert.equal(await fileAndFormat(g.bytes('model.pth'), 'dir/model.pth'), { file: 'model.pth', format: 'pth' });
});

test('isVimq: the four magic bytes, nothing shorter, no checkpoint', async () => {
  const file = await fileP;
  assert.ok(isVimq(file));
  assert.not.ok(isVimq(file.subarray(0, 3)));
  assert.not.ok(isVimq(g.bytes('model.pth')));
  assert.not.ok(isVimq(new TextEncoder().encode('VIMX and more')));
});

test('a Node Buffer (whose slice() is a view) is read, verified and left unchanged', async () => {
  const file = await fileP;
  const buffer = Buffer.from(file);
  const { metadata } = await readVimq(buffer);
  assert.is(metadata.config.numTokens, 17);
  assert.ok(buffer.equals(file), 'the caller\'s bytes are not modified');
});

test('a flipped bit anywhere is caught by the checksum', async () => {
  const file = await fileP;
  for (const at of [70, 200, file.length - 1, Math.floor(file.length / 2)]) {
    const bad = file.slice();
    bad[at] ^= 0x10;
    await refused(bad, /checksum mismatch/);
  }
});

test('truncated, padded, foreign and newer-version files are refused by name', async () => {
  const file = await fileP;
  for (const cut of [63, 64, 1000, file.length - 1]) await refused(file.subarray(0, cut), /m\.vimq: /);
  await refused(new Uint8Array([...file, 0]), /header says/);
  // Without the .vimq magic (cut before its end, or text), a file is taken for a checkpoint and refused as one.
  for (const cut of [0, 3]) await refused(file.subarray(0, cut), /m\.vimq: /, 'BAD_CHECKPOINT');
  await refused(new TextEncoder().encode('not a model at all, just some text here...'.repeat(3)), /not a \.vimq|unsupported|format/i, 'BAD_CHECKPOINT');
  const newer = file.slice();
  new DataView(newer.buffer).setUint32(4, VIMQ_VERSION + 1, true);
  await refused(newer, /newer than this runtime/);
});

test('metadata that disagrees with its tensors is refused, saying which tensor', async () => {
  await refused(await withMetadata((m) => { m.tensors[3].bytes += 64; }), /pos_embed: \d+ bytes, shape and layout need/);
  await refused(await withMetadata((m) => { m.tensors[2].offset = m.tensors[1].offset; }), /overlap|offset/);
  await refused(await withMetadata((m) => { m.tensors[0].offset = 1e12; }), /outside the data section/);
  await refused(await withMetadata((m) => { m.config.depth = 3; }), /layers\.2\.norm\.weight is missing/);
  await refused(await withMetadata((m) => { m.config.embedDim = 48; }), /is \[.*\] \(.*\); the config needs/);
  await refused(await withMetadata((m) => { m.tensors.pop(); }), /head\.bias is missing/);
});

test('NaN or infinite weights are refused, saying which tensor and element, wherever the bytes sit in memory', async () => {
  const { metadata, data } = await readVimq(await fileP);
  const f32 = metadata.tensors.filter((t) => t.dtype === 'f32');
  const first = f32[0], last = f32[f32.length - 1];
  for (const [t, element, value] of [[first, 0, Number.NaN], [last, last.bytes / 4 - 1, Number.NEGATIVE_INFINITY], [first, 5, Number.POSITIVE_INFINITY]] as const) {
    const poisoned = data.slice();
    new DataView(poisoned.buffer).setFloat32(t.offset + 4 * element, value, true);
    const file = await writeVimq(metadata, poisoned);
    const shifted = new Uint8Array(file.length + 1);   // the data section at an odd address: read through copies
    shifted.set(file, 1);
    for (const bytes of [file, shifted.subarray(1)]) {
      await refused(bytes, new RegExp(`tensor ${t.name.replace(/\./g, '\\.')} holds ${value} at element ${element}$`));
    }
  }
});

test.run();

/**
 * PyTorch checkpoints as torch.save (>= 1.6) writes them: a zip archive with `<prefix>/data.pkl` (the pickled
 * object tree), `<prefix>/data/<key>` (one raw storage per key), and optional `<prefix>/byteorder` and
 * `<prefix>/version`. The pickle is read by the restricted unpickler; only the storages of the selected
 * state_dict are decoded, so optimizer moments and EMA copies cost nothing.
 */
import { fail } from '../errors.js';
import { decodeFloats, FLOAT_DTYPE_BYTES, numel, shapeString, type FloatDtype, type StateDict, type Tensor } from '../tensor.js';
import { TensorRef, unpickle } from './pickle.js';
import { selectStateDict, type SelectedTensors, type WeightsChoice } from './checkpoint-layout.js';

const bad = (file: string, problem: string): never => fail('BAD_CHECKPOINT', `${file}: ${problem}`);

export interface PthWeights extends Omit<SelectedTensors, 'tensors'> {
  stateDict: StateDict;
}

export const isZip = (bytes: Uint8Array): boolean =>
  bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;

/** Reads the state_dict of a torch.save checkpoint: `checkpoint['model']` if present, else the top-level dict. */
export function readPth(bytes: Uint8Array, name = 'checkpoint'): StateDict {
  return readPthWeights(bytes, name).stateDict;
}

/** The chosen weights of a torch.save checkpoint (checkpoint-layout.ts says where they are looked for). */
export function readPthWeights(bytes: Uint8Array, name: string, weights: WeightsChoice = 'model'): PthWeights {
  if (!isZip(bytes)) {
    if (bytes[0] === 0x80) {
      bad(name, 'legacy (pre-1.6) torch.save format or a bare pickle; re-save it with torch >= 1.6: '
        + 'torch.save(torch.load(path), new_path)');
    }
    bad(name, 'not a zip archive, so not a torch.save checkpoint');
  }
  const entries = readEntries(bytes, name);
  const prefix = archivePrefix(entries, name);
  const pklName = `${prefix}data.pkl`;
  const littleEndian = isLittleEndian(entries.get(`${prefix}byteorder`), name);
  const { tensors, location, trainedAs } = selectStateDict(unpickle(entries.get(pklName)!, `${name}: ${pklName}`), name, weights);

  const storageEntry = (ref: TensorRef) => `${prefix}data/${ref.storage.key}`;
  const sd: StateDict = new Map();
  // Each view is bounded by its storage (materialize), but views of one storage can repeat: cap the total
  // so that a small file cannot demand unbounded memory.
  let elementsLeft = bytes.length;
  for (const [key, ref] of tensors) {
    const entryName = storageEntry(ref);
    const storage = entries.get(entryName) ?? bad(name, `tensor '${key}' needs ${entryName}, which the archive lacks`);
    const tensor = materialize(ref, storage, littleEndian, `${name}: tensor '${key}'`);
    elementsLeft -= tensor.data.length;
    if (elementsLeft < 0) bad(name, `at tensor '${key}', the views add up to more elements than the file has bytes`);
    sd.set(key, tensor);
  }
  return { stateDict: sd, location, trainedAs };
}

// --- the zip container --------------------------------------------------------------------------------------
// torch.save writes a plain stored archive, so the reader is small: the end-of-central-directory record, the
// central directory, one local header per entry. Every entry's bytes are a view of the file, never a copy,
// and no two entries may share bytes: N directory entries aliasing one blob would otherwise cost N times it.

const EOCD_SIGNATURE = 0x06054b50;
const EOCD_BYTES = 22;
const MAX_ZIP_COMMENT = 0xffff;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const CENTRAL_HEADER_BYTES = 46;
const LOCAL_SIGNATURE = 0x04034b50;
const LOCAL_HEADER_BYTES = 30;
const ZIP64_EXTRA_ID = 0x0001;
const ZIP64_MARK = 0xffffffff;

/** Entry name -> its stored bytes (a view of the archive). */
type Entries = Map<string, Uint8Array>;

function u16At(bytes: Uint8Array, at: number): number {
  return at < 0 || at + 2 > bytes.length ? -1 : bytes[at] | bytes[at + 1] << 8;
}

function u32At(bytes: Uint8Array, at: number): number {
  if (at < 0 || at + 4 > bytes.length) return -1;
  return (bytes[at] | bytes[at + 1] << 8 | bytes[at + 2] << 16 | bytes[at + 3] << 24) >>> 0;
}

/** A little-endian u64 that must be a safe integer (no archive this reader accepts is near 2^53 bytes). */
function u64At(bytes: Uint8Array, at: number): number {
  const low = u32At(bytes, at), high = u32At(bytes, at + 4);
  return low < 0 || high < 0 || high >= 2 ** 21 ? -1 : high * 2 ** 32 + low;
}

/** Where the central directory is and how many entries it has (zip64 where torch wrote it). */
function centralDirectory(bytes: Uint8Array, name: string): { count: number; offset: number; end: number } {
  let eocd = bytes.length - EOCD_BYTES;
  const lowest = Math.max(0, bytes.length - EOCD_BYTES - MAX_ZIP_COMMENT);
  while (eocd >= lowest && u32At(bytes, eocd) !== EOCD_SIGNATURE) eocd--;
  if (eocd < lowest) bad(name, 'truncated zip: no end-of-central-directory record');
  let count = u16At(bytes, eocd + 10);
  let offset = u32At(bytes, eocd + 16);
  let end = eocd;
  if (u32At(bytes, eocd - 20) === ZIP64_LOCATOR_SIGNATURE) {
    const zip64 = u64At(bytes, eocd - 12);
    if (u32At(bytes, zip64) === ZIP64_EOCD_SIGNATURE) {
      count = u64At(bytes, zip64 + 32);
      offset = u64At(bytes, zip64 + 48);
      end = zip64;
    }
  }
  if (offset < 0 || count < 0 || offset + count * CENTRAL_HEADER_BYTES > end) {
    bad(name, `truncated zip central directory (${count} entries at byte ${offset}, record at byte ${end})`);
  }
  return { count, offset, end };
}

/** Sizes and offset of a central header, from its zip64 extra field where the 32-bit ones say 0xffffffff. */
function entrySizes(bytes: Uint8Array, at: number, extraAt: number, extraEnd: number):
    { compressed: number; original: number; local: number } {
  const fields = { original: u32At(bytes, at + 24), compressed: u32At(bytes, at + 20), local: u32At(bytes, at + 42) };
  if (fields.original !== ZIP64_MARK && fields.compressed !== ZIP64_MARK && fields.local !== ZIP64_MARK) return fields;
  for (let e = extraAt; e + 4 <= extraEnd; e += 4 + u16At(bytes, e + 2)) {
    if (u16At(bytes, e) !== ZIP64_EXTRA_ID) continue;
    let field = e + 4;   // the 64-bit values present, in this order (APPNOTE 4.5.3)
    for (const key of ['original', 'compressed', 'local'] as const) {
      if (fields[key] === ZIP64_MARK) fields[key] = u64At(bytes, (field += 8) - 8);
    }
  }
  return fields;
}

/**
 * Every entry of the archive as a view of its stored bytes. Refused before anything is read: headers outside
 * the file, compressed entries (torch.save stores), duplicate names, and entries whose bytes (local header
 * included) overlap another's or the central directory.
 */
function readEntries(bytes: Uint8Array, name: string): Entries {
  const { count, offset, end } = centralDirectory(bytes, name);
  const entries: Entries = new Map();
  const extents: [number, number, string][] = [];
  let at = offset;
  for (let i = 0; i < count; i++) {
    if (u32At(bytes, at) !== CENTRAL_SIGNATURE) bad(name, `zip central directory entry ${i} at byte ${at} is damaged`);
    const nameLength = u16At(bytes, at + 28), extraLength = u16At(bytes, at + 30), commentLength = u16At(bytes, at + 32);
    const next = at + CENTRAL_HEADER_BYTES + nameLength + extraLength + commentLength;
    if (next > end) bad(name, `zip central directory entry ${i} runs past the directory`);
    const entryName = new TextDecoder().decode(bytes.subarray(at + CENTRAL_HEADER_BYTES, at + CENTRAL_HEADER_BYTES + nameLength));
    const method = u16At(bytes, at + 10);
    const extraAt = at + CENTRAL_HEADER_BYTES + nameLength;
    const { compressed, original, local } = entrySizes(bytes, at, extraAt, extraAt + extraLength);
    if (entries.has(entryName)) bad(name, `zip entry ${entryName} appears twice`);
    if (method !== 0) bad(name, `zip entry ${entryName} is compressed (method ${method}); torch.save stores entries uncompressed`);
    if (compressed !== original || compressed < 0 || compressed > bytes.length) {
      bad(name, `zip entry ${entryName} declares ${original} bytes in a ${bytes.length}-byte file`);
    }
    if (local < 0 || u32At(bytes, local) !== LOCAL_SIGNATURE) bad(name, `zip entry ${entryName}: no local header at byte ${local}`);
    const dataAt = local + LOCAL_HEADER_BYTES + u16At(bytes, local + 26) + u16At(bytes, local + 28);
    if (dataAt + compressed > offset) bad(name, `zip entry ${entryName} runs past the end of the file (truncated)`);
    entries.set(entryName, bytes.subarray(dataAt, dataAt + compressed));
    extents.push([local, dataAt + compressed, entryName]);
    at = next;
  }
  extents.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < extents.length; i++) {
    if (extents[i][0] < extents[i - 1][1]) bad(name, `zip entries ${extents[i - 1][2]} and ${extents[i][2]} overlap`);
  }
  return entries;
}

/** The archive's top folder ("archive/" or the file stem torch chose), found by its data.pkl. */
function archivePrefix(entries: Entries, name: string): string {
  const pickles = [...entries.keys()].filter((entry) => /^[^/]+\/data\.pkl$/.test(entry));
  if (pickles.length === 0) bad(name, 'zip archive has no <folder>/data.pkl, so it is not a torch.save checkpoint');
  if (pickles.length > 1) bad(name, `zip archive has ${pickles.length} data.pkl entries (${pickles.slice(0, 3).join(', ')})`);
  return pickles[0].slice(0, -'data.pkl'.length);
}

/** Archives written before torch 1.10 have no byteorder entry and are little-endian. */
function isLittleEndian(entry: Uint8Array | undefined, name: string): boolean {
  if (entry === undefined) return true;
  const order = new TextDecoder().decode(entry).trim();
  if (order !== 'little' && order !== 'big') bad(name, `byteorder entry says '${order.slice(0, 20)}', expected little or big`);
  return order === 'little';
}

// --- from the pickled object tree to tensors ---------------------------------------------------------------

const FLOAT_DTYPES = new Set<string>(['float32', 'float16', 'bfloat16', 'float64']);

/**
 * A strided view of a storage -> a contiguous fp32 tensor. The view must lie inside the storage and may not
 * have more elements than the storage (stride-0 broadcasts would let a tiny file demand gigabytes). A
 * contiguous fp32 view is the file's own bytes (decodeFloats), so a checkpoint costs its file and no copy.
 */
function materialize(ref: TensorRef, storage: Uint8Array, littleEndian: boolean, what: string): Tensor {
  const { dtype, numel: storageNumel } = ref.storage;
  if (!FLOAT_DTYPES.has(dtype)) {
    fail('BAD_CHECKPOINT', `${what} has dtype ${dtype}; only float32, float16, bfloat16 and float64 weights are supported`);
  }
  const itemBytes = FLOAT_DTYPE_BYTES[dtype as FloatDtype];
  if (storage.length !== storageNumel * itemBytes) {
    fail('BAD_CHECKPOINT', `${what}: storage ${ref.storage.key} has ${storage.length} bytes, expected ${storageNumel} × ${dtype}`);
  }
  const shape = [...ref.shape];
  const count = numel(shape);
  if (!(count <= storageNumel)) { // also catches NaN from an overflowing product times a zero dim
    fail('BAD_CHECKPOINT', `${what}: shape ${shapeString(shape)} has more elements than its ${storageNumel}-element storage`);
  }
  if (count === 0) return { shape, data: new Float32Array(0) };
  const last = ref.shape.reduce((at, size, d) => at + (size - 1) * ref.stride[d], ref.offset);
  if (last >= storageNumel) {
    fail('BAD_CHECKPOINT', `${what}: shape ${shapeString(shape)}, stride ${shapeString(ref.stride)} and offset `
      + `${ref.offset} reach element ${last} of a ${storageNumel}-element storage`);
  }
  const span = decodeFloats(storage.subarray(ref.offset * itemBytes, (last + 1) * itemBytes), dtype as FloatDtype, littleEndian);
  return { shape, data: isContiguous(ref) ? span : gather(span, ref.shape, ref.stride, count) };
}

/** C-contiguous, ignoring the strides of size-1 dims (as torch does). */
function isContiguous(ref: TensorRef): boolean {
  let expected = 1;
  for (let d = ref.shape.length - 1; d >= 0; d--) {
    if (ref.shape[d] !== 1 && ref.stride[d] !== expected) return false;
    expected *= ref.shape[d];
  }
  return true;
}

/** Copies a strided view (strides in elements, starting at span[0]) into row-major order. */
function gather(span: Float32Array, shape: readonly number[], stride: readonly number[], count: number): Float32Array {
  const out = new Float32Array(count);
  const index = new Array<number>(shape.length).fill(0);
  let source = 0;
  for (let i = 0; i < count; i++) {
    out[i] = span[source];
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d]++;
      source += stride[d];
      if (index[d] < shape[d]) break;
      source -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}

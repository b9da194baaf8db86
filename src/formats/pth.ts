/**
 * PyTorch checkpoints as torch.save (>= 1.6) writes them: a zip archive with `<prefix>/data.pkl` (the pickled
 * object tree), `<prefix>/data/<key>` (one raw storage per key), and optional `<prefix>/byteorder` and
 * `<prefix>/version`. The pickle is read by the restricted unpickler; only the storages of the selected
 * state_dict are extracted and decoded, so optimizer moments and EMA copies cost nothing.
 */
import { unzipSync, type UnzipFileInfo } from 'fflate';
import { fail, VimedgeError } from '../errors.js';
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
  checkCentralDirectory(bytes, name);
  const entries = listEntries(bytes, name);
  const prefix = archivePrefix(entries, name);
  const pklName = `${prefix}data.pkl`;
  const byteorderName = `${prefix}byteorder`;
  const meta = extract(bytes, name, entries, [pklName, byteorderName]);
  const littleEndian = isLittleEndian(meta.get(byteorderName), name);
  const { tensors, location, trainedAs } = selectStateDict(unpickle(meta.get(pklName)!, `${name}: ${pklName}`), name, weights);

  const storageEntry = (ref: TensorRef) => `${prefix}data/${ref.storage.key}`;
  const storages = extract(bytes, name, entries, [...tensors.values()].map(storageEntry));
  const sd: StateDict = new Map();
  // A storage is the archive entry's own copy (the unzip copies every entry): the one tensor of a storage
  // may view it rather than copy it (a converter's peak memory); tensors sharing a storage get copies.
  const views = new Map<string, number>();
  for (const ref of tensors.values()) views.set(storageEntry(ref), (views.get(storageEntry(ref)) ?? 0) + 1);
  // Each view is bounded by its storage (materialize), but views of one storage can repeat: cap the total
  // so that a small file cannot demand unbounded memory.
  let elementsLeft = bytes.length;
  for (const [key, ref] of tensors) {
    const entryName = storageEntry(ref);
    const storage = storages.get(entryName) ?? bad(name, `tensor '${key}' needs ${entryName}, which the archive lacks`);
    const tensor = materialize(ref, storage, views.get(entryName) === 1, littleEndian, `${name}: tensor '${key}'`);
    elementsLeft -= tensor.data.length;
    if (elementsLeft < 0) bad(name, `at tensor '${key}', the views add up to more elements than the file has bytes`);
    sd.set(key, tensor);
  }
  return { stateDict: sd, location, trainedAs };
}

// --- the zip container (fflate lists and extracts; these checks keep it on the bytes that exist) ---------

const EOCD_SIGNATURE = 0x06054b50;
const EOCD_BYTES = 22;
const MAX_ZIP_COMMENT = 0xffff;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_HEADER_MIN_BYTES = 46;

function u32At(bytes: Uint8Array, at: number): number {
  if (at < 0 || at + 4 > bytes.length) return -1;
  return (bytes[at] | bytes[at + 1] << 8 | bytes[at + 2] << 16 | bytes[at + 3] << 24) >>> 0;
}

/**
 * fflate trusts the end-of-central-directory record: a bad entry count or offset makes it read past the
 * file (as zeros) or loop billions of times. Locate the record the way fflate does and check that the
 * directory it points at fits in the file before fflate walks it.
 */
function checkCentralDirectory(bytes: Uint8Array, name: string): void {
  let eocd = bytes.length - EOCD_BYTES;
  const lowest = Math.max(0, bytes.length - EOCD_BYTES - MAX_ZIP_COMMENT);
  while (eocd >= lowest && u32At(bytes, eocd) !== EOCD_SIGNATURE) eocd--;
  if (eocd < lowest) bad(name, 'truncated zip: no end-of-central-directory record');
  let count = bytes[eocd + 8] | bytes[eocd + 9] << 8;
  let offset = u32At(bytes, eocd + 16);
  let directoryEnd = eocd;
  if (u32At(bytes, eocd - 20) === ZIP64_LOCATOR_SIGNATURE) {
    const zip64 = u32At(bytes, eocd - 12);
    if (u32At(bytes, zip64) === ZIP64_EOCD_SIGNATURE) {
      count = u32At(bytes, zip64 + 32);
      offset = u32At(bytes, zip64 + 48);
      directoryEnd = zip64;
    }
  }
  if (offset < 0 || count < 0 || offset + count * CENTRAL_HEADER_MIN_BYTES > directoryEnd) {
    bad(name, `truncated zip central directory (${count} entries at byte ${offset}, record at byte ${directoryEnd})`);
  }
}

/** fflate with its plain Errors turned into BAD_CHECKPOINT; ours pass through. */
function unzip(bytes: Uint8Array, name: string, filter: (entry: UnzipFileInfo) => boolean): Record<string, Uint8Array> {
  try {
    return unzipSync(bytes, { filter });
  } catch (e) {
    if (e instanceof VimedgeError) throw e;
    return bad(name, `corrupt zip archive (${(e as Error).message})`);
  }
}

/** Entry name -> size. torch.save stores entries uncompressed, so anything else is refused unread. */
function listEntries(bytes: Uint8Array, name: string): Map<string, number> {
  const entries = new Map<string, number>();
  unzip(bytes, name, (entry) => {
    if (entries.has(entry.name)) bad(name, `zip entry ${entry.name} appears twice`);
    if (entry.compression !== 0) {
      bad(name, `zip entry ${entry.name} is compressed (method ${entry.compression}); torch.save stores entries uncompressed`);
    }
    if (entry.size !== entry.originalSize || entry.size > bytes.length) {
      bad(name, `zip entry ${entry.name} declares ${entry.originalSize} bytes in a ${bytes.length}-byte file`);
    }
    entries.set(entry.name, entry.size);
    return false;
  });
  return entries;
}

function extract(bytes: Uint8Array, name: string, entries: Map<string, number>, wanted: string[]): Map<string, Uint8Array> {
  const wantedSet = new Set(wanted);
  const files = unzip(bytes, name, (entry) => wantedSet.has(entry.name));
  const out = new Map<string, Uint8Array>();
  for (const [entryName, data] of Object.entries(files)) {
    if (data.length !== entries.get(entryName)) bad(name, `zip entry ${entryName} runs past the end of the file (truncated)`);
    out.set(entryName, data);
  }
  return out;
}

/** The archive's top folder ("archive/" or the file stem torch chose), found by its data.pkl. */
function archivePrefix(entries: Map<string, number>, name: string): string {
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
 * have more elements than the storage (stride-0 broadcasts would let a tiny file demand gigabytes). `owned`:
 * no other tensor views this storage, so the result may share its bytes.
 */
function materialize(ref: TensorRef, storage: Uint8Array, owned: boolean, littleEndian: boolean, what: string): Tensor {
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
  const span = decodeFloats(storage.subarray(ref.offset * itemBytes, (last + 1) * itemBytes), dtype as FloatDtype, littleEndian, owned);
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

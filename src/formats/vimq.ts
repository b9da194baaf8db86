/**
 * The .vimq model file (docs/FORMAT.md): read whole (readVimq), or header and metadata first and the data
 * section straight into the kernels' memory (model-file.ts loadModelFrom), the checksum taken where the bytes
 * lie; written whole (writeVimq) or piece by piece (writeVimqPieces).
 *
 *   0   4   magic "VIMQ"
 *   4   4   u32 format version
 *   8   4   u32 metadata length J (UTF-8 JSON)
 *   12  4   u32 data offset (64-aligned, >= 64 + J)
 *   16  8   u64 file length
 *   24  32  SHA-256 of the whole file with these 32 bytes zeroed
 *   56  8   reserved, zero
 *   64  J   metadata JSON, then zero padding up to the data offset
 *   data offset: tensor blobs, each at a 64-aligned offset relative to the data offset
 *
 * All integers little-endian. The data section is laid out exactly as the runtime's weight arena, so
 * loading copies it into wasm memory in one piece.
 */
import { fail } from '../errors.js';
import { alignUp, BLOB_ALIGN, isVimq, layoutBytes, LAYOUT_DTYPES, VIMQ_MAGIC, type ModelMetadata, type PackedModel,
  type TensorEntry } from '../model/contract.js';

export const VIMQ_VERSION = 1;
/** The fixed header in front of the metadata. */
export const VIMQ_HEADER_BYTES = 64;
const CHECKSUM_AT = 24;
const CHECKSUM_BYTES = 32;

interface NodeHash { update(bytes: Uint8Array): NodeHash; digest(): Uint8Array }

/** node:crypto where the host has it (Node >= 20.16, Deno, Bun), found without an import so that bundles for the web stay free of it. */
const nodeCrypto = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
  ?.getBuiltinModule?.('node:crypto') as { createHash(algorithm: 'sha256'): NodeHash } | undefined;

/**
 * SHA-256 of parts fed in order, each free to change once fed. node:crypto hashes each part where it lies,
 * several times faster than WebCrypto (11 against 70 ms for the default model on Node); WebCrypto takes one
 * buffer, so there a copy of each part is kept and the copies joined at the end.
 */
function sha256Stream(): { update(part: Uint8Array): void; digest(): Promise<Uint8Array> } {
  const hash = nodeCrypto?.createHash('sha256');
  const parts: Uint8Array[] = [];
  return {
    update: (part) => { if (hash) hash.update(part); else parts.push(part.slice()); },
    digest: async () => (hash ? new Uint8Array(hash.digest()) : sha256(parts)),
  };
}

/** SHA-256 of parts end to end (WebCrypto: one joined copy). */
async function sha256(parts: Uint8Array[]): Promise<Uint8Array> {
  if (nodeCrypto) {
    const hash = nodeCrypto.createHash('sha256');
    for (const part of parts) hash.update(part);
    return new Uint8Array(hash.digest());
  }
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => { joined.set(p, at); return at + p.length; }, 0);
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', joined));
}

/**
 * A data section given piece by piece: stored bytes at offsets into it, in increasing order, not
 * overlapping; a piece's bytes may be reused for the next piece once it is taken.
 */
export interface DataPieces {
  bytes: number;
  pieces: Iterable<{ offset: number; bytes: Uint8Array }>;
}

/** Where a writer puts bytes: at `position` of the file, in any order (the checksum comes last); the bytes may change once it returns. */
export type VimqSink = (bytes: Uint8Array, position: number) => Promise<void>;

/** The file up to its data section (checksum zero) for this metadata and a data section of `dataBytes`. */
function vimqHead(metadata: ModelMetadata, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(metadata));
  const dataOffset = alignUp(VIMQ_HEADER_BYTES + json.length, BLOB_ALIGN);
  const head = new Uint8Array(dataOffset);
  const view = new DataView(head.buffer);
  head.set(new TextEncoder().encode(VIMQ_MAGIC), 0);
  view.setUint32(4, VIMQ_VERSION, true);
  view.setUint32(8, json.length, true);
  view.setUint32(12, dataOffset, true);
  view.setBigUint64(16, BigInt(dataOffset + dataBytes), true);
  head.set(json, VIMQ_HEADER_BYTES);
  return head;
}

/** Serialises metadata + a prepared data section into a complete file in memory. */
export async function writeVimq(metadata: ModelMetadata, data: Uint8Array): Promise<Uint8Array> {
  const head = vimqHead(metadata, data.length);
  const file = new Uint8Array(head.length + data.length);
  file.set(head);
  file.set(data, head.length);
  file.set(await sha256([file]), CHECKSUM_AT);
  return file;
}

/**
 * Writes metadata + a data section through `sink` one piece at a time, hashing as it goes, so that no copy
 * of the whole file need exist (`vimedge convert` writes a checkpoint's tensors to disk this way). The gaps
 * between pieces are zeros; the checksum is written last. Returns the file's length.
 */
export async function writeVimqPieces(metadata: ModelMetadata, data: DataPieces, sink: VimqSink): Promise<number> {
  const head = vimqHead(metadata, data.bytes);
  const hash = sha256Stream();
  const put = async (bytes: Uint8Array, position: number) => {
    hash.update(bytes);
    await sink(bytes, position);
  };
  await put(head, 0);
  let at = 0;
  for (const piece of data.pieces) {
    if (piece.offset < at || piece.offset + piece.bytes.length > data.bytes) {
      throw new RangeError(`data piece at ${piece.offset} (+${piece.bytes.length}) out of order or outside ${data.bytes} bytes`);
    }
    if (piece.offset > at) await put(new Uint8Array(piece.offset - at), head.length + at);
    await put(piece.bytes, head.length + piece.offset);
    at = piece.offset + piece.bytes.length;
  }
  if (at < data.bytes) await put(new Uint8Array(data.bytes - at), head.length + at);
  await sink(await hash.digest(), CHECKSUM_AT);
  return head.length + data.bytes;
}

/** The fixed header's fields, each checked against the file's length. */
interface VimqHeader {
  jsonLength: number;
  dataOffset: number;
}

const badFile = (name: string) => (why: string): never => fail('BAD_MODEL_FILE', `${name}: ${why}`);

/** The first VIMQ_HEADER_BYTES of a file of `fileLength` bytes -> where its metadata and data are. */
export function readVimqHeader(header: Uint8Array, fileLength: number, name: string): VimqHeader {
  const bad = badFile(name);
  if (fileLength < VIMQ_HEADER_BYTES || header.length < VIMQ_HEADER_BYTES) bad(`too short for a .vimq header (${fileLength} bytes)`);
  if (!isVimq(header)) bad('not a .vimq file (bad magic)');
  const view = new DataView(header.buffer, header.byteOffset, VIMQ_HEADER_BYTES);
  const version = view.getUint32(4, true);
  if (version > VIMQ_VERSION) {
    bad(`format version ${version} is newer than this runtime reads (${VIMQ_VERSION}); upgrade vimedge`);
  }
  if (version < 1) bad(`invalid format version ${version}`);
  const jsonLength = view.getUint32(8, true);
  const dataOffset = view.getUint32(12, true);
  const declaredLength = view.getBigUint64(16, true);
  if (declaredLength !== BigInt(fileLength)) {
    bad(`file is ${fileLength} bytes but its header says ${declaredLength} (truncated or padded)`);
  }
  if (VIMQ_HEADER_BYTES + jsonLength > dataOffset || dataOffset > fileLength || dataOffset % BLOB_ALIGN !== 0) {
    bad(`metadata length ${jsonLength} / data offset ${dataOffset} out of range`);
  }
  return { jsonLength, dataOffset };
}

/** Whether the file's checksum matches: `head` is its bytes up to the data section, `data` the rest. */
export async function checkVimqChecksum(head: Uint8Array, data: Uint8Array, name: string): Promise<void> {
  const stored = head.subarray(CHECKSUM_AT, CHECKSUM_AT + CHECKSUM_BYTES);
  const actual = await sha256([head.subarray(0, CHECKSUM_AT), new Uint8Array(CHECKSUM_BYTES), head.subarray(CHECKSUM_AT + CHECKSUM_BYTES), data]);
  if (!actual.every((b, i) => b === stored[i])) badFile(name)('checksum mismatch: the file is corrupt');
}

/** The metadata of a file whose header is `header`, from its bytes up to the data section; its tensor table checked. */
export function readVimqMetadata(head: Uint8Array, { jsonLength, dataOffset }: VimqHeader, fileLength: number, name: string): ModelMetadata {
  const bad = badFile(name);
  let metadata: ModelMetadata;
  try {
    metadata = JSON.parse(new TextDecoder('utf-8', { fatal: true })
      .decode(head.subarray(VIMQ_HEADER_BYTES, VIMQ_HEADER_BYTES + jsonLength)));
  } catch (e) {
    return bad(`metadata is not valid JSON (${(e as Error).message})`);
  }
  if (typeof metadata !== 'object' || metadata === null || !Array.isArray(metadata.tensors)) {
    bad('metadata has no tensor table');
  }
  checkTensorTable(metadata.tensors, fileLength - dataOffset, bad);
  return metadata;
}

/** Parses and verifies a .vimq file. Never trusts a length field before checking it against the file. */
export async function readVimq(file: Uint8Array, name = 'model'): Promise<PackedModel> {
  const header = readVimqHeader(file, file.length, name);
  const head = file.subarray(0, header.dataOffset), data = file.subarray(header.dataOffset);
  await checkVimqChecksum(head, data, name);
  return { metadata: readVimqMetadata(head, header, file.length, name), data };
}

function checkTensorTable(tensors: TensorEntry[], dataBytes: number, bad: (why: string) => never): void {
  const seen = new Set<string>();
  const spans: [number, number, string][] = [];
  for (const t of tensors) {
    if (typeof t?.name !== 'string') bad('tensor entry without a name');
    if (seen.has(t.name)) bad(`tensor ${t.name} listed twice`);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
      bad(`tensor ${t.name}: invalid shape ${JSON.stringify(t.shape)}`);
    }
    const expected = layoutBytes(t.shape, t.layout);
    if (expected < 0) bad(`tensor ${t.name}: unknown layout ${t.layout}`);
    if (!LAYOUT_DTYPES[t.layout].includes(t.dtype)) bad(`tensor ${t.name}: unsupported dtype ${t.dtype} for layout ${t.layout}`);
    if (t.bytes !== expected) bad(`tensor ${t.name}: ${t.bytes} bytes, shape and layout need ${expected}`);
    if (!Number.isSafeInteger(t.offset) || t.offset < 0 || t.offset % BLOB_ALIGN !== 0 ||
        t.offset + t.bytes > dataBytes) {
      bad(`tensor ${t.name}: offset ${t.offset} + ${t.bytes} bytes outside the data section (${dataBytes})`);
    }
    spans.push([t.offset, t.offset + t.bytes, t.name]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) bad(`tensors ${spans[i - 1][2]} and ${spans[i][2]} overlap`);
  }
}

/**
 * idx files, the container of MNIST and Fashion-MNIST, plain or gzip-compressed (the Debian package ships .gz).
 *
 * Layout (big-endian): bytes 0-1 = 0x00 0x00, byte 2 = element type (0x08 = unsigned byte, the only one used
 * here), byte 3 = number of dimensions; then one uint32 size per dimension; then the elements, row-major.
 * Labels: magic 0x00000801, dims [count]. Images: magic 0x00000803, dims [count, rows, cols].
 *
 * Works on bytes only (no file system), so it runs in any JS host; gzip goes through fflate. Every way a file
 * can be wrong (not gzip, truncated, bad CRC, wrong magic, sizes that disagree with the length) is a
 * `VimedgeError('BAD_DATASET', '<file>: ...')`.
 */
import { gunzipSync } from 'fflate';
import { fail } from '../errors.js';

export const IDX_LABELS = 0x00000801;
export const IDX_IMAGES = 0x00000803;
/** Deflate's largest expansion: a 258-byte match coded in 2 bits. */
const DEFLATE_MAX_RATIO = 1032;
/** Largest decompressed idx file accepted (Fashion-MNIST's training images are 47,040,016 bytes). */
export const MAX_IDX_BYTES = 256 * 1024 * 1024;

export interface IdxArray {
  magic: number;
  /** Sizes, outermost first, e.g. [60000, 28, 28]. */
  dims: number[];
  /** The elements, row-major; a view into the decompressed buffer. */
  data: Uint8Array;
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

const hex = (v: number) => `0x${v.toString(16).padStart(8, '0')}`;
const u32be = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const u32le = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE, as in the gzip trailer). fflate's gunzipSync does not check it, so a damaged file could
 *  otherwise decode to wrong pixels without any error. */
export function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Decompress one gzip member with the output bounded: the trailer's ISIZE (length mod 2^32) sizes the buffer,
 * so a truncated file, whose last 4 bytes are arbitrary, cannot make us allocate gigabytes. The result must
 * have exactly ISIZE bytes and the trailer's CRC-32.
 */
export function gunzipBounded(bytes: Uint8Array, file: string, maxBytes = MAX_IDX_BYTES): Uint8Array {
  if (!isGzip(bytes)) fail('BAD_DATASET', `${file}: not gzip data`);
  if (bytes.length < 18) fail('BAD_DATASET', `${file}: truncated gzip data (${bytes.length} bytes)`);
  const n = bytes.length;
  const size = u32le(bytes, n - 4);
  const crc = u32le(bytes, n - 8);
  if (size > maxBytes) {
    fail('BAD_DATASET', `${file}: gzip trailer declares ${size} bytes, over the ${maxBytes}-byte limit ` +
      '(truncated file, or not an idx file)');
  }
  // Deflate expands at most 1032:1, so a larger ISIZE is a damaged trailer (a truncated file ends anywhere),
  // and allocating it would let a few kB demand up to the limit above.
  if (size > (n - 18) * DEFLATE_MAX_RATIO + 64) {
    fail('BAD_DATASET', `${file}: gzip trailer declares ${size} bytes, more than ${n} compressed bytes can hold; truncated or damaged file`);
  }
  let out: Uint8Array;
  try {
    out = gunzipSync(bytes, { out: new Uint8Array(size) });
  } catch (err) {
    return fail('BAD_DATASET', `${file}: bad gzip data (${(err as Error).message}); truncated or damaged file`);
  }
  if (out.length !== size) {
    fail('BAD_DATASET', `${file}: gzip data gave ${out.length} bytes but its trailer says ${size}; truncated file`);
  }
  if (crc32(out) !== crc) fail('BAD_DATASET', `${file}: gzip CRC-32 mismatch; damaged or truncated file`);
  return out;
}

/** Parse an uncompressed idx file; `expectMagic` (IDX_LABELS / IDX_IMAGES) is checked when given. */
export function parseIdx(bytes: Uint8Array, file: string, expectMagic?: number): IdxArray {
  if (bytes.length < 4) fail('BAD_DATASET', `${file}: ${bytes.length} bytes, too short for an idx header`);
  const magic = u32be(bytes, 0);
  if (bytes[0] !== 0 || bytes[1] !== 0) fail('BAD_DATASET', `${file}: not an idx file (magic ${hex(magic)})`);
  if (bytes[2] !== 0x08) {
    fail('BAD_DATASET', `${file}: idx element type 0x${bytes[2].toString(16)}, only unsigned bytes (0x08) are supported`);
  }
  if (expectMagic !== undefined && magic !== expectMagic) {
    const what = expectMagic === IDX_LABELS ? 'a labels file' : expectMagic === IDX_IMAGES ? 'an images file' : 'idx';
    fail('BAD_DATASET', `${file}: magic ${hex(magic)}, expected ${hex(expectMagic)} (${what})`);
  }
  const ndim = bytes[3];
  if (ndim < 1) fail('BAD_DATASET', `${file}: idx header with 0 dimensions`);
  const header = 4 + 4 * ndim;
  if (bytes.length < header) fail('BAD_DATASET', `${file}: truncated idx header (${bytes.length} bytes)`);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndim; i++) {
    const d = u32be(bytes, 4 + 4 * i);
    dims.push(d);
    count *= d;
  }
  if (count > MAX_IDX_BYTES) fail('BAD_DATASET', `${file}: dims [${dims.join(', ')}] are too large`);
  const have = bytes.length - header;
  if (have !== count) {
    fail('BAD_DATASET', `${file}: ${have} data bytes but dims [${dims.join(', ')}] need ${count}` +
      (have < count ? ' (truncated file)' : ' (trailing bytes)'));
  }
  return { magic, dims, data: bytes.subarray(header) };
}

/** Parse an idx file given as its bytes, gzip-compressed or not. */
export function readIdx(bytes: Uint8Array, file: string, expectMagic?: number): IdxArray {
  return parseIdx(isGzip(bytes) ? gunzipBounded(bytes, file) : bytes, file, expectMagic);
}

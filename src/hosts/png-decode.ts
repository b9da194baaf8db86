/**
 * PNG to RGB bytes as Pillow 9.4 does it (`Image.open(f).convert('RGB')`), the same code on every host.
 *
 * Own code rather than a library (sharp's libpng, the Rust png crate of `@jsquash/png`), because PIL's rules
 * for damaged and hostile files are part of the result and no decoder follows them: PIL checks the CRC of
 * every chunk before the first IDAT but not of the image data; it stops inflating as soon as the image is
 * full (a 1x1 image followed by gigabytes of deflated zeros costs nothing); it refuses text and ICC chunks
 * that inflate past 1 MB; and 16-bit greyscale becomes a 32-bit integer image that `convert` clips to 0..255,
 * whatever tRNS says. Pixels are plain arithmetic once inflated (fflate, already a dependency), so exactness
 * is easy to hold; memory is the output plus one inflated image, garbage-collected like any array (a wasm
 * codec's memory never shrinks).
 */
import { Unzlib } from 'fflate';
import { release, type RawImage } from '../preprocess/raw-image.js';
import { fail } from '../errors.js';

/** Pillow's MAX_TEXT_CHUNK: a zTXt, compressed iTXt or iCCP chunk inflating past this is refused. */
const MAX_TEXT_CHUNK = 1 << 20;
/**
 * Compressed data is inflated this many bytes at a time, so that inflating stops soon after the image is
 * full: at deflate's 1032:1 at most, one slice is 4 MB of output.
 */
const INFLATE_SLICE = 1 << 12;

interface Ihdr {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlaced: boolean;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const u32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** The image size from the IHDR chunk, for the pixel limit before anything is inflated. */
export function pngSize(b: Uint8Array, name: string): { width: number; height: number } {
  const isIhdr = b.length >= 24 && b[12] === 0x49 && b[13] === 0x48 && b[14] === 0x44 && b[15] === 0x52;
  if (!isIhdr) fail('BAD_IMAGE', `${name}: PNG without an IHDR chunk`);
  return { width: u32(b, 16), height: u32(b, 20) };
}

/** Inflates a zlib stream up to `limit` bytes; true when it is longer (Pillow's _safe_zlib_decompress). */
function inflatesPast(data: Uint8Array, limit: number): boolean {
  let total = 0;
  const stream = new Unzlib((chunk) => { total += chunk.length; });
  try {
    for (let p = 0; p < data.length && total <= limit; p += INFLATE_SLICE) stream.push(data.subarray(p, p + INFLATE_SLICE));
  } catch {
    return false; // Pillow ignores corrupt text and ICC data
  }
  return total > limit;
}

/** zTXt, iTXt and iCCP: where the compressed part starts, or -1 when the chunk holds none. */
function compressedTextStart(type: string, data: Uint8Array): number {
  const afterKeyword = data.indexOf(0) + 1;
  if (afterKeyword === 0) return -1;
  if (type === 'zTXt' || type === 'iCCP') return afterKeyword + 1;
  if (type === 'iTXt' && data[afterKeyword] === 1) {
    // compression flag, method, language tag \0, translated keyword \0, text
    const lang = data.indexOf(0, afterKeyword + 2);
    const translated = lang < 0 ? -1 : data.indexOf(0, lang + 1);
    return translated < 0 ? -1 : translated + 1;
  }
  return -1;
}

interface Chunks {
  ihdr: Ihdr;
  palette?: Uint8Array;
  /** The consecutive IDAT chunks' data, the last one possibly cut short by the end of the file. */
  idat: Uint8Array[];
  idatCut: boolean;
}

function readChunks(b: Uint8Array, name: string): Chunks {
  let ihdr: Ihdr | undefined;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let idatEnded = false;
  let idatCut = false;
  let sequence: number | undefined; // APNG's last fcTL / fdAT sequence number
  for (let p = 8; p + 8 <= b.length;) {
    const length = u32(b, p);
    const type = String.fromCharCode(b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
    const data = b.subarray(p + 8, Math.min(p + 8 + length, b.length));
    if (type === 'IEND') break;
    if (type === 'IDAT') {
      if (!ihdr) fail('BAD_IMAGE', `${name}: PNG image data before the IHDR chunk`);
      if (!idatEnded) idat.push(data);
      idatCut = p + 8 + length > b.length;
      p += 12 + length;
      continue;
    }
    if (idat.length > 0) idatEnded = true;
    // Pillow reads every chunk up to the next animation frame in full (the image data excepted).
    if (p + 8 + length > b.length) fail('BAD_IMAGE', `${name}: truncated PNG (the ${type} chunk is cut short)`);
    // It checks the CRC of every chunk before the image data (not of the data itself, nor after it).
    if (!idatEnded && crc32(b.subarray(p + 4, p + 8 + length)) !== u32(b, p + 8 + length)) {
      fail('BAD_IMAGE', `${name}: broken PNG (bad checksum in the ${type} chunk)`);
    }
    if (type === 'fcTL' || type === 'fdAT') {
      const seq = length >= 4 ? u32(data, 0) : -1;
      const next = sequence === undefined ? type === 'fcTL' : seq === sequence + 1;
      if (!next) fail('BAD_IMAGE', `${name}: APNG with frame sequence errors`);
      sequence = seq;
      if (type === 'fcTL' && idatEnded) break; // the next frame starts: frame 0 is complete
    } else if (type === 'IHDR') {
      if (length < 13) fail('BAD_IMAGE', `${name}: PNG IHDR chunk of ${length} bytes`);
      if (data[10] !== 0) fail('BAD_IMAGE', `${name}: PNG with unknown compression method ${data[10]}`);
      if (data[11] !== 0) fail('BAD_IMAGE', `${name}: PNG with unknown filter method ${data[11]}`);
      ihdr = { width: u32(data, 0), height: u32(data, 4), depth: data[8], colorType: data[9], interlaced: data[12] !== 0 };
    } else if (type === 'PLTE') {
      palette = data;
    } else {
      const start = compressedTextStart(type, data);
      if (start > 0 && inflatesPast(data.subarray(start), MAX_TEXT_CHUNK)) {
        fail('BAD_IMAGE', `${name}: PNG ${type} chunk inflates past ${MAX_TEXT_CHUNK} bytes (refused as a decompression bomb)`);
      }
    }
    p += 12 + length;
  }
  if (!ihdr) return fail('BAD_IMAGE', `${name}: PNG without an IHDR chunk`);
  if (!(DEPTHS[ihdr.colorType] ?? []).includes(ihdr.depth)) {
    fail('BAD_IMAGE', `${name}: PNG of colour type ${ihdr.colorType} at ${ihdr.depth} bits is not a valid PNG mode`);
  }
  if (idat.length === 0) fail('BAD_IMAGE', `${name}: PNG without image data`);
  return { ihdr, palette, idat, idatCut };
}

/** The passes' rectangles: the whole image, or Adam7's seven (empty ones left out). */
function passes(h: Ihdr): { x0: number; y0: number; dx: number; dy: number; w: number; rows: number }[] {
  const all = h.interlaced ? ADAM7 : [[0, 0, 1, 1]];
  return all.map(([x0, y0, dx, dy]) => ({
    x0, y0, dx, dy, w: Math.ceil((h.width - x0) / dx), rows: Math.ceil((h.height - y0) / dy),
  })).filter((p) => p.w > 0 && p.rows > 0);
}

/** Inflates the image data until `size` bytes are out, and no further; `chunks`: how many IDAT chunks that took. */
function inflateImage(idat: Uint8Array[], size: number, name: string): { raw: Uint8Array; chunks: number } {
  const raw = new Uint8Array(size);
  let filled = 0;
  let chunks = 0;
  const stream = new Unzlib((chunk) => {
    const n = Math.min(chunk.length, size - filled);
    raw.set(chunk.subarray(0, n), filled);
    filled += n;
  });
  try {
    for (const data of idat) {
      if (filled === size) break;
      chunks++;
      for (let p = 0; p < data.length && filled < size; p += INFLATE_SLICE) stream.push(data.subarray(p, p + INFLATE_SLICE));
    }
  } catch (err) {
    if (filled < size) fail('BAD_IMAGE', `${name}: broken PNG image data (${err instanceof Error ? err.message : String(err)})`);
  }
  if (filled < size) fail('BAD_IMAGE', `${name}: truncated PNG (image data ends after ${filled} of ${size} bytes)`);
  return { raw, chunks };
}

/** Undoes the scanline filters in place; `start` is the filter-type byte, `previous` the row above's (-1: none). */
function unfilter(raw: Uint8Array, start: number, rowBytes: number, bpp: number, previous: number, name: string): void {
  const row = start + 1;
  const up = previous + 1;
  const hasUp = previous >= 0;
  switch (raw[start]) {
    case 0:
      return;
    case 1: // Sub
      for (let i = bpp; i < rowBytes; i++) raw[row + i] = (raw[row + i] + raw[row + i - bpp]) & 0xff;
      return;
    case 2: // Up
      if (hasUp) for (let i = 0; i < rowBytes; i++) raw[row + i] = (raw[row + i] + raw[up + i]) & 0xff;
      return;
    case 3: // Average
      for (let i = 0; i < rowBytes; i++) {
        const left = i >= bpp ? raw[row + i - bpp] : 0;
        raw[row + i] = (raw[row + i] + ((left + (hasUp ? raw[up + i] : 0)) >> 1)) & 0xff;
      }
      return;
    case 4: // Paeth
      for (let i = 0; i < rowBytes; i++) {
        const a = i >= bpp ? raw[row + i - bpp] : 0;
        const b = hasUp ? raw[up + i] : 0;
        const c = hasUp && i >= bpp ? raw[up + i - bpp] : 0;
        const pa = Math.abs(b - c);
        const pb = Math.abs(a - c);
        const pc = Math.abs(a + b - 2 * c);
        raw[row + i] = (raw[row + i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
      }
      return;
    default:
      fail('BAD_IMAGE', `${name}: broken PNG image data (filter type ${raw[start]})`);
  }
}

/** One pixel of an unfiltered row to RGB, by Pillow's mode for the colour type and depth. */
type PixelToRgb = (raw: Uint8Array, row: number, x: number, out: Uint8Array, o: number) => void;

function pixelToRgb({ colorType, depth }: Ihdr, palette: Uint8Array | undefined): PixelToRgb {
  const bits = (raw: Uint8Array, row: number, x: number) =>
    (raw[row + ((x * depth) >> 3)] >> (8 - depth - ((x * depth) & 7))) & ((1 << depth) - 1);
  const grey = (out: Uint8Array, o: number, v: number) => { out[o] = out[o + 1] = out[o + 2] = v; };
  if (colorType === 3) {
    // Pillow's palette starts as a grey ramp; PLTE overwrites its first entries.
    const entries = palette ? Math.floor(palette.length / 3) : 0;
    return (raw, row, x, out, o) => {
      const i = depth === 8 ? raw[row + x] : bits(raw, row, x);
      if (i < entries) { out[o] = palette![3 * i]; out[o + 1] = palette![3 * i + 1]; out[o + 2] = palette![3 * i + 2]; }
      else grey(out, o, i);
    };
  }
  const step = CHANNELS[colorType] * (depth >> 3); // bytes a pixel, 8 and 16 bits
  if (colorType === 0 && depth < 8) {
    const scale = 255 / ((1 << depth) - 1); // modes 1, L;2, L;4: 0..max stretched to 0..255
    return (raw, row, x, out, o) => grey(out, o, bits(raw, row, x) * scale);
  }
  if (colorType === 0 && depth === 16) {
    return (raw, row, x, out, o) => grey(out, o, Math.min((raw[row + 2 * x] << 8) | raw[row + 2 * x + 1], 255));
  }
  if (colorType === 0 || colorType === 4) return (raw, row, x, out, o) => grey(out, o, raw[row + step * x]);
  // RGB and RGBA; at 16 bits the high byte of each sample.
  const sample = depth >> 3;
  return (raw, row, x, out, o) => {
    const p = row + step * x;
    out[o] = raw[p]; out[o + 1] = raw[p + sample]; out[o + 2] = raw[p + 2 * sample];
  };
}

/** Decodes a PNG whose size has been checked against the caller's pixel limit (`pngSize`). */
export function decodePng(bytes: Uint8Array, name: string): RawImage {
  const { ihdr, palette, idat, idatCut } = readChunks(bytes, name);
  const { width, height, depth, colorType } = ihdr;
  if (width < 1 || height < 1) fail('BAD_IMAGE', `${name}: image has no size (${width}x${height})`);
  const bitsPerPixel = CHANNELS[colorType] * depth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const layout = passes(ihdr).map((p) => ({ ...p, rowBytes: Math.ceil((p.w * bitsPerPixel) / 8) }));
  const { raw, chunks } = inflateImage(idat, layout.reduce((n, p) => n + (p.rowBytes + 1) * p.rows, 0), name);
  // Pillow reads the IDAT chunks after the image is full, and refuses one cut short by the end of the file.
  if (idatCut && chunks < idat.length) fail('BAD_IMAGE', `${name}: truncated PNG (the last IDAT chunk is cut short)`);
  const toRgb = pixelToRgb(ihdr, palette);
  const rgbRows = colorType === 2 && depth === 8; // rows already are RGB bytes
  const rgb = new Uint8Array(width * height * 3);
  let start = 0;
  for (const p of layout) {
    for (let r = 0; r < p.rows; r++, start += p.rowBytes + 1) {
      unfilter(raw, start, p.rowBytes, bpp, r === 0 ? -1 : start - p.rowBytes - 1, name);
      const y = p.y0 + r * p.dy;
      if (rgbRows && p.dx === 1) rgb.set(raw.subarray(start + 1, start + 1 + p.rowBytes), 3 * y * width);
      else for (let i = 0; i < p.w; i++) toRgb(raw, start + 1, i, rgb, 3 * (y * width + p.x0 + i * p.dx));
    }
  }
  release(raw);
  return { width, height, channels: 3, data: rgb };
}

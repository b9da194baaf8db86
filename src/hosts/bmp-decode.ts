/**
 * BMP to RGB bytes as Pillow 9.4's BmpImagePlugin reads it, the same code on every host (sharp has no BMP
 * loader; a browser's canvas differs on RLE, 16-bit and alpha files).
 *
 * Own code, because Pillow's reading is its own: the headers it accepts (OS/2 12-byte, Windows 40 to 124),
 * only the bitfield layouts it knows (5-5-5, 5-6-5, byte-aligned 24/32-bit), 16-bit channels scaled by
 * integer division, a palette read right after the header (its entries past the table: grey, Pillow's
 * default palette), and its RLE4/RLE8 decoder's handling of overlong runs and word alignment.
 */
import type { RawImage } from '../preprocess/raw-image.js';
import { checkImageSize } from './image-format.js';
import { fail } from '../errors.js';

const RAW = 0;
const RLE8 = 1;
const RLE4 = 2;
const BITFIELDS = 3;

/** 32-bit bitfield masks (R, G, B, A) Pillow reads, and the byte offsets of R, G, B in a pixel. */
const MASKS_32: [string, number[]][] = [
  ['ff0000,ff00,ff,0', [2, 1, 0]], ['ff000000,ff0000,ff00,0', [3, 2, 1]], ['ff000000,ff0000,ff00,ff', [3, 2, 1]],
  ['ff,ff00,ff0000,ff000000', [0, 1, 2]], ['ff0000,ff00,ff,ff000000', [2, 1, 0]], ['0,0,0,0', [2, 1, 0]],
];

interface BmpHeader {
  width: number;
  height: number;
  bottomUp: boolean;
  bits: number;
  compression: number;
  colors: number;
  /** Bytes a palette entry: 3 (OS/2) or 4. */
  entry: number;
  /** Where the palette starts (right after the header) and where the pixels start. */
  paletteAt: number;
  pixelsAt: number;
  masks?: number[];
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

/** The header, read as far as the size (for the pixel limit) and the layout. */
export function bmpHeader(b: Uint8Array, name: string): BmpHeader {
  if (b.length < 18) fail('BAD_IMAGE', `${name}: truncated BMP header`);
  const size = u32(b, 14);
  const h = 18; // the header's fields after its size
  if (b.length < 14 + size) fail('BAD_IMAGE', `${name}: truncated BMP header`);
  let header: BmpHeader;
  if (size === 12) {
    header = { width: u16(b, h), height: u16(b, h + 2), bottomUp: true, bits: u16(b, h + 6), compression: RAW, colors: 0, entry: 3, paletteAt: 26, pixelsAt: 0 };
  } else if ([40, 52, 56, 64, 108, 124].includes(size)) {
    const topDown = b[h + 7] === 0xff;
    const rawHeight = u32(b, h + 4);
    header = {
      width: u32(b, h), height: topDown ? 2 ** 32 - rawHeight : rawHeight, bottomUp: !topDown, bits: u16(b, h + 10),
      compression: u32(b, h + 12), colors: u32(b, h + 28), entry: 4, paletteAt: 14 + size, pixelsAt: 0,
    };
    if (header.compression === BITFIELDS) {
      // A 40-byte header is followed by the three colour masks; larger ones hold all four.
      const at = size >= 52 ? h + 36 : 14 + size;
      if (b.length < at + 12) fail('BAD_IMAGE', `${name}: truncated BMP header`);
      header.masks = [u32(b, at), u32(b, at + 4), u32(b, at + 8), size >= 56 ? u32(b, at + 12) : 0];
      if (size < 52) header.paletteAt += 12;
    }
  } else {
    return fail('BAD_IMAGE', `${name}: unsupported BMP header size ${size}`);
  }
  header.colors ||= 2 ** header.bits;
  // Pillow: a pixel offset pointing right after the header means the palette is not counted in it.
  let offset = u32(b, 10);
  if (offset === 14 + size && header.bits <= 8) offset += 4 * header.colors;
  header.pixelsAt = offset || header.paletteAt + (header.bits <= 8 ? header.entry * header.colors : 0);
  return header;
}

/** Pixel value to RGB for raw and bitfield data (bits > 8). */
function directPixels(h: BmpHeader, name: string): (b: Uint8Array, p: number, out: Uint8Array, o: number) => void {
  const masks = h.masks?.map((m) => m.toString(16)).join(',');
  if (h.bits === 32) {
    const order = h.compression === BITFIELDS ? MASKS_32.find(([m]) => m === masks)?.[1] : [2, 1, 0];
    if (!order) return fail('BAD_IMAGE', `${name}: unsupported BMP bitfields layout (${masks})`);
    return (b, p, out, o) => { out[o] = b[p + order[0]]; out[o + 1] = b[p + order[1]]; out[o + 2] = b[p + order[2]]; };
  }
  if (h.bits === 24) {
    if (h.compression === BITFIELDS && masks !== 'ff0000,ff00,ff,0') fail('BAD_IMAGE', `${name}: unsupported BMP bitfields layout (${masks})`);
    return (b, p, out, o) => { out[o] = b[p + 2]; out[o + 1] = b[p + 1]; out[o + 2] = b[p]; };
  }
  // 16 bits: 5-5-5 unless the bitfields say 5-6-5; each channel scaled to 0..255 by integer division.
  const is565 = h.compression === BITFIELDS && masks === 'f800,7e0,1f,0';
  if (h.compression === BITFIELDS && !is565 && masks !== '7c00,3e0,1f,0') fail('BAD_IMAGE', `${name}: unsupported BMP bitfields layout (${masks})`);
  const [rShift, gMax] = is565 ? [11, 63] : [10, 31];
  return (b, p, out, o) => {
    const v = b[p] | (b[p + 1] << 8);
    out[o] = Math.floor((((v >> rShift) & 31) * 255) / 31);
    out[o + 1] = Math.floor((((v >> 5) & gMax) * 255) / gMax);
    out[o + 2] = Math.floor(((v & 31) * 255) / 31);
  };
}

/** Pillow's BmpRleDecoder: palette indices, row by row as stored, until end of bitmap or the image is full. */
function decodeRle(b: Uint8Array, h: BmpHeader, name: string): Uint8Array {
  const { width, height } = h;
  const total = width * height;
  const data = new Uint8Array(total);
  let n = 0; // indices written; past `total` they are dropped
  const push = (v: number, count = 1) => {
    const end = Math.min(n + count, total);
    if (end > n) data.fill(v, n, end);
    n += count;
  };
  const rle4 = h.compression === RLE4;
  let x = 0;
  let p = h.pixelsAt;
  while (n < total && p + 2 <= b.length) {
    let count = b[p];
    const value = b[p + 1];
    p += 2;
    if (count > 0) {
      if (x + count > width) count = Math.max(0, width - x);
      if (rle4) for (let i = 0; i < count; i++) push(i % 2 === 0 ? value >> 4 : value & 15);
      else push(value, count);
      x += count;
    } else if (value === 0) { // end of line: pad the row
      if (n % width !== 0) push(0, width - (n % width));
      x = 0;
    } else if (value === 1) { // end of bitmap
      break;
    } else if (value === 2) { // delta: Pillow 9.4 reads two bytes, then takes right and up from the two after them
      if (p + 2 > b.length) break;
      if (p + 4 > b.length) fail('BAD_IMAGE', `${name}: truncated BMP (RLE delta cut short)`);
      push(0, b[p + 2] + b[p + 3] * width);
      p += 4;
      x = n % width;
    } else { // absolute: `value` pixels follow, padded to a 16-bit boundary of the file
      const bytes = rle4 ? value >> 1 : value;
      const available = Math.min(bytes, b.length - p);
      for (let i = 0; i < available; i++) {
        if (rle4) { push(b[p + i] >> 4); push(b[p + i] & 15); } else push(b[p + i]);
      }
      p += available;
      if (available < bytes) break;
      x += value;
      if (p % 2 !== 0) p += 1;
    }
  }
  if (n < total) fail('BAD_IMAGE', `${name}: truncated BMP (the RLE data ends before the image is full)`);
  return data;
}

/** Decodes a BMP file; the caller's pixel limit is checked on the header's size. */
export function decodeBmp(b: Uint8Array, name: string, maxPixels: number): RawImage {
  const h = bmpHeader(b, name);
  const { width, height, bits } = h;
  checkImageSize(h, name, maxPixels);
  if (![1, 4, 8, 16, 24, 32].includes(bits)) fail('BAD_IMAGE', `${name}: unsupported BMP pixel depth (${bits} bits)`);
  const rle = h.compression === RLE8 || h.compression === RLE4;
  if (h.compression > BITFIELDS || (rle && bits > 8)) fail('BAD_IMAGE', `${name}: unsupported BMP compression (${h.compression})`);
  const rgb = new Uint8Array(width * height * 3);
  const rowOf = (r: number) => (h.bottomUp ? height - 1 - r : r); // stored row -> image row
  if (bits <= 8) {
    if (!(h.colors > 0 && h.colors <= 256)) fail('BAD_IMAGE', `${name}: unsupported BMP palette size (${h.colors})`);
    const palette = new Uint8Array(768);
    for (let i = 0; i < 256; i++) palette[3 * i] = palette[3 * i + 1] = palette[3 * i + 2] = i;
    // A palette that is exactly black/white or the grey ramp is dropped by Pillow (mode 1 or L): same colours.
    for (let i = 0; i < h.colors && h.paletteAt + h.entry * i + 3 <= b.length; i++) {
      const e = h.paletteAt + h.entry * i;
      palette[3 * i] = b[e + 2]; palette[3 * i + 1] = b[e + 1]; palette[3 * i + 2] = b[e];
    }
    let indices: Uint8Array;
    if (rle) {
      indices = decodeRle(b, h, name);
    } else {
      indices = new Uint8Array(width * height);
      const stride = ((width * bits + 31) >> 3) & ~3;
      if (h.pixelsAt + stride * (height - 1) + Math.ceil((width * bits) / 8) > b.length) {
        fail('BAD_IMAGE', `${name}: truncated BMP (pixel data ends early)`);
      }
      for (let r = 0; r < height; r++) {
        const row = h.pixelsAt + r * stride;
        for (let x = 0; x < width; x++) {
          indices[r * width + x] = bits === 8 ? b[row + x] : (b[row + ((x * bits) >> 3)] >> (8 - bits - ((x * bits) & 7))) & ((1 << bits) - 1);
        }
      }
    }
    for (let r = 0; r < height; r++) {
      const y = rowOf(r);
      for (let x = 0; x < width; x++) rgb.set(palette.subarray(3 * indices[r * width + x], 3 * indices[r * width + x] + 3), 3 * (y * width + x));
    }
    return { width, height, channels: 3, data: rgb };
  }
  const pixel = directPixels(h, name);
  const step = bits >> 3;
  const stride = ((width * bits + 31) >> 3) & ~3;
  if (h.pixelsAt + stride * (height - 1) + width * step > b.length) fail('BAD_IMAGE', `${name}: truncated BMP (pixel data ends early)`);
  for (let r = 0; r < height; r++) {
    const y = rowOf(r);
    const row = h.pixelsAt + r * stride;
    for (let x = 0; x < width; x++) pixel(b, row + x * step, rgb, 3 * (y * width + x));
  }
  return { width, height, channels: 3, data: rgb };
}

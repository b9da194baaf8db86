/**
 * GIF to RGB bytes as Pillow 9.4 does it: the first frame, the same code on every host.
 *
 * Own code, because what PIL shows is not what a GIF viewer (libvips, omggif, a browser) shows: frame 0 is
 * drawn on a canvas filled with the transparency index (index 0 without one), and transparent pixels keep
 * their index, so after `convert('RGB')` every pixel is the colour-table entry of its index (past the end of
 * the table: grey, Pillow's default palette); a frame larger than the logical screen enlarges the image.
 * GIF's LZW is simple enough that a decoder of our own is smaller than a dependency's glue.
 */
import type { RawImage } from '../preprocess/raw-image.js';
import { checkImageSize } from './image-format.js';
import { fail } from '../errors.js';

interface Frame {
  x0: number; y0: number; width: number; height: number;
  interlaced: boolean;
  palette?: Uint8Array;
  /** The LZW minimum code size, then the data sub-blocks' offset. */
  codeSize: number;
  data: number;
}

/** The image size from the logical screen descriptor. */
export function gifSize(b: Uint8Array, name: string): { width: number; height: number } {
  if (b.length < 13) fail('BAD_IMAGE', `${name}: truncated GIF header`);
  return { width: b[6] | (b[7] << 8), height: b[8] | (b[9] << 8) };
}

function firstFrame(b: Uint8Array, name: string): { frame: Frame; transparency?: number; global?: Uint8Array } {
  let p = 13;
  let global: Uint8Array | undefined;
  if (b[10] & 0x80) {
    global = b.subarray(p, p + (3 << ((b[10] & 7) + 1)));
    p += 3 << ((b[10] & 7) + 1);
  }
  let transparency: number | undefined;
  while (p < b.length) {
    if (b[p] === 0x21) {
      // Extension: label, then sub-blocks. Graphic control: 04 flags delay(2) index.
      if (b[p + 1] === 0xf9 && b[p + 2] >= 4 && b[p + 3] & 1) transparency = b[p + 6];
      p += 2;
      while (p < b.length && b[p] !== 0) p += b[p] + 1;
      p += 1;
    } else if (b[p] === 0x2c) {
      if (p + 11 > b.length) break;
      const u16 = (o: number) => b[p + o] | (b[p + o + 1] << 8);
      const flags = b[p + 9];
      const frame: Frame = { x0: u16(1), y0: u16(3), width: u16(5), height: u16(7), interlaced: (flags & 0x40) !== 0, codeSize: 0, data: 0 };
      p += 10;
      if (flags & 0x80) {
        frame.palette = b.subarray(p, p + (3 << ((flags & 7) + 1)));
        p += 3 << ((flags & 7) + 1);
      }
      if (p >= b.length) break;
      frame.codeSize = b[p];
      frame.data = p + 1;
      return { frame, transparency, global };
    } else {
      break; // the trailer (3B) or junk before any frame
    }
  }
  return fail('BAD_IMAGE', `${name}: GIF without an image (truncated or corrupt)`);
}

/**
 * Decodes the LZW stream into `indices` (row-major, frame-sized). Stops at the end code, the block
 * terminator or a full frame, as Pillow's decoder does; refuses data that ends before any of them.
 */
function decodeLzw(b: Uint8Array, frame: Frame, name: string): Uint8Array {
  const { width, height, codeSize } = frame;
  const indices = new Uint8Array(width * height);
  if (codeSize < 1 || codeSize > 11) fail('BAD_IMAGE', `${name}: GIF with LZW code size ${codeSize}`);
  const clear = 1 << codeSize;
  const end = clear + 1;
  const prefix = new Uint16Array(4096);
  const suffix = new Uint8Array(4096);
  for (let i = 0; i < clear; i++) suffix[i] = i;
  let next = clear + 2;
  let size = codeSize + 1;
  let previous = -1;
  let out = 0;
  const total = width * height;
  const stack = new Uint8Array(4096);
  // Bit reader over the data sub-blocks.
  let p = frame.data;
  let blockEnd = p;
  let bits = 0;
  let nbits = 0;
  while (out < total) {
    while (nbits < size) {
      if (p === blockEnd) {
        if (p >= b.length) return fail('BAD_IMAGE', `${name}: truncated GIF (image data ends early)`);
        const length = b[p++];
        if (length === 0) return indices; // block terminator before the frame is full: the rest stays as the canvas
        blockEnd = p + length;
      }
      if (p >= b.length) return fail('BAD_IMAGE', `${name}: truncated GIF (image data ends early)`);
      bits |= b[p++] << nbits;
      nbits += 8;
    }
    const code = bits & ((1 << size) - 1);
    bits >>>= size;
    nbits -= size;
    if (code === clear) {
      next = clear + 2;
      size = codeSize + 1;
      previous = -1;
      continue;
    }
    if (code === end) break;
    if (previous < 0) {
      if (code >= clear) return fail('BAD_IMAGE', `${name}: broken GIF image data (code ${code} after a clear)`);
      indices[out++] = code;
      previous = code;
      continue;
    }
    if (code > next || (code === next && next >= 4096)) return fail('BAD_IMAGE', `${name}: broken GIF image data (code ${code})`);
    // The string for `code`; for code === next (not yet in the table), previous's string plus its first byte.
    const unknown = code === next;
    let c = unknown ? previous : code;
    let n = 0;
    while (c >= clear) { stack[n++] = suffix[c]; c = prefix[c]; }
    const first = c;
    stack[n++] = first;
    while (n > 0 && out < total) indices[out++] = stack[--n];
    if (unknown && out < total) indices[out++] = first;
    if (next < 4096) {
      prefix[next] = previous;
      suffix[next] = first;
      next++;
      if (next === 1 << size && size < 12) size++;
    }
    previous = code;
  }
  return indices;
}

/** Decodes the first frame of a GIF; the caller's pixel limit is checked here, on the (possibly enlarged) size. */
export function decodeGif(bytes: Uint8Array, name: string, maxPixels: number): RawImage {
  const screen = gifSize(bytes, name);
  const { frame, transparency, global } = firstFrame(bytes, name);
  // Pillow enlarges the image to hold a frame that reaches past the logical screen.
  const width = Math.max(screen.width, frame.x0 + frame.width);
  const height = Math.max(screen.height, frame.y0 + frame.height);
  checkImageSize({ width, height }, name, maxPixels);
  const indices = decodeLzw(bytes, frame, name);
  const palette = frame.palette ?? global;
  const entries = palette ? Math.floor(palette.length / 3) : 0;
  const rgb = new Uint8Array(width * height * 3);
  const put = (o: number, i: number) => {
    if (i < entries) { rgb[o] = palette![3 * i]; rgb[o + 1] = palette![3 * i + 1]; rgb[o + 2] = palette![3 * i + 2]; }
    else rgb[o] = rgb[o + 1] = rgb[o + 2] = i;
  };
  const background = transparency ?? 0;
  for (let o = 0; o < rgb.length; o += 3) put(o, background);
  const rows = interlacedRows(frame.height, frame.interlaced);
  for (let r = 0; r < frame.height; r++) {
    const y = frame.y0 + rows[r];
    for (let x = 0; x < frame.width; x++) put(3 * (y * width + frame.x0 + x), indices[r * frame.width + x]);
  }
  return { width, height, channels: 3, data: rgb };
}

/** The frame row that each stored row goes to: in order, or GIF's four interlace passes. */
function interlacedRows(height: number, interlaced: boolean): number[] {
  if (!interlaced) return Array.from({ length: height }, (_, i) => i);
  const rows: number[] = [];
  for (const [start, step] of [[0, 8], [4, 8], [2, 4], [1, 2]]) for (let y = start; y < height; y += step) rows.push(y);
  return rows;
}

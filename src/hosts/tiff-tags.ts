/**
 * The TIFF tags Pillow acts on where libvips acts otherwise, read from the first IFD:
 * - Orientation: Pillow applies it while loading any file it decodes through libtiff (every compressed TIFF;
 *   TiffImagePlugin's `load_end`), so `Image.open(f).convert('RGB')` of such a file is already turned;
 *   libvips gives the pixels as stored. `applyOrientation` turns the decoded image the same way.
 * - ExtraSamples = 1 (associated, premultiplied alpha): libvips un-premultiplies 16-bit samples at full
 *   precision, Pillow un-premultiplies their high bytes (its `RGBa;16` unpackers), which rounds otherwise.
 *   `withUnassociatedAlpha` relabels the alpha so that libvips gives the stored samples.
 */
import type { RawImage } from '../preprocess/raw-image.js';

const COMPRESSION = 259;
const ORIENTATION = 274;
const EXTRA_SAMPLES = 338;
const ASSOCIATED_ALPHA = 1;
const UNASSOCIATED_ALPHA = 2;

interface Ifd {
  /** tag -> the entry's value count and the byte offset of its value field */
  entries: Map<number, { count: number; value: number }>;
  u16(offset: number): number;
}

/** The first IFD's entries; none when `b` is not a TIFF. */
function firstIfd(b: Uint8Array): Ifd {
  const little = b[0] === 0x49;
  const u16 = (o: number) => (little ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1]);
  const u32 = (o: number) => (little ? (u16(o) | (u16(o + 2) << 16)) >>> 0 : ((u16(o) << 16) | u16(o + 2)) >>> 0);
  const entries = new Map<number, { count: number; value: number }>();
  const isTiff = b.length >= 8 && (little ? b[1] === 0x49 && b[2] === 42 && b[3] === 0 : b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42);
  const ifd = isTiff ? u32(4) : b.length;
  for (let i = 0, n = ifd + 2 <= b.length ? u16(ifd) : 0; i < n && ifd + 2 + 12 * i + 12 <= b.length; i++) {
    const entry = ifd + 2 + 12 * i;
    entries.set(u16(entry), { count: u32(entry + 4), value: entry + 8 });
  }
  return { entries, u16 };
}

/** The first value of a SHORT tag (stored in the value field itself), or `fallback` when absent. */
function shortTag({ entries, u16 }: Ifd, tag: number, fallback: number): number {
  const entry = entries.get(tag);
  return entry ? u16(entry.value) : fallback;
}

/** The Orientation (2..8) Pillow applies to this TIFF's first image, or 1 when it applies none. */
export function tiffOrientation(b: Uint8Array): number {
  const ifd = firstIfd(b);
  const orientation = shortTag(ifd, ORIENTATION, 1);
  return shortTag(ifd, COMPRESSION, 1) !== 1 && orientation >= 2 && orientation <= 8 ? orientation : 1;
}

/**
 * A copy of this TIFF whose first extra sample is marked unassociated alpha, when it is marked associated
 * (premultiplied); else undefined. The pixels are untouched: only the label that makes libvips divide.
 */
export function withUnassociatedAlpha(b: Uint8Array): Uint8Array | undefined {
  const ifd = firstIfd(b);
  const extra = ifd.entries.get(EXTRA_SAMPLES);
  // Up to two SHORT values sit in the value field; the first is the alpha's kind.
  if (!extra || extra.count > 2 || shortTag(ifd, EXTRA_SAMPLES, 0) !== ASSOCIATED_ALPHA) return undefined;
  const copy = b.slice();
  copy[b[0] === 0x49 ? extra.value : extra.value + 1] = UNASSOCIATED_ALPHA;
  return copy;
}

/** The image as Pillow's transpose for an Orientation value leaves it (FLIP_LEFT_RIGHT ... ROTATE_90). */
export function applyOrientation(image: RawImage, orientation: number): RawImage {
  if (orientation === 1) return image;
  const { width: w, height: h, channels: c, data } = image;
  const swap = orientation >= 5;
  const [ow, oh] = swap ? [h, w] : [w, h];
  // Source column and row of output pixel (X, Y).
  const source: Record<number, (X: number, Y: number) => [number, number]> = {
    2: (X, Y) => [w - 1 - X, Y],              // FLIP_LEFT_RIGHT
    3: (X, Y) => [w - 1 - X, h - 1 - Y],      // ROTATE_180
    4: (X, Y) => [X, h - 1 - Y],              // FLIP_TOP_BOTTOM
    5: (X, Y) => [Y, X],                      // TRANSPOSE
    6: (X, Y) => [Y, h - 1 - X],              // ROTATE_270 (clockwise)
    7: (X, Y) => [w - 1 - Y, h - 1 - X],      // TRANSVERSE
    8: (X, Y) => [w - 1 - Y, X],              // ROTATE_90 (counter-clockwise)
  };
  const at = source[orientation];
  const out = new Uint8Array(data.length);
  for (let Y = 0; Y < oh; Y++) {
    for (let X = 0; X < ow; X++) {
      const [x, y] = at(X, Y);
      out.set(data.subarray(c * (y * w + x), c * (y * w + x) + c), c * (Y * ow + X));
    }
  }
  return { width: ow, height: oh, channels: c, data: out };
}

/**
 * Pillow applies a TIFF's Orientation tag while loading any file it decodes through libtiff (every compressed
 * TIFF; TiffImagePlugin's `load_end`), so `Image.open(f).convert('RGB')` of such a file is already turned;
 * libvips gives the pixels as stored. This reads the tag and turns the decoded image the same way.
 */
import type { RawImage } from '../preprocess/raw-image.js';

const COMPRESSION = 259;
const ORIENTATION = 274;

/** The Orientation (2..8) Pillow applies to this TIFF's first image, or 1 when it applies none. */
export function tiffOrientation(b: Uint8Array): number {
  const little = b[0] === 0x49;
  if (b.length < 8 || !(little ? b[1] === 0x49 && b[2] === 42 && b[3] === 0 : b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42)) return 1;
  const u16 = (o: number) => (little ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1]);
  const u32 = (o: number) => (little ? (u16(o) | (u16(o + 2) << 16)) >>> 0 : ((u16(o) << 16) | u16(o + 2)) >>> 0);
  const ifd = u32(4);
  if (ifd + 2 > b.length) return 1;
  let compression = 1;
  let orientation = 1;
  for (let i = 0, n = u16(ifd); i < n && ifd + 2 + 12 * i + 12 <= b.length; i++) {
    const entry = ifd + 2 + 12 * i;
    const tag = u16(entry);
    if (tag === COMPRESSION) compression = u16(entry + 8); // SHORT, stored in the value field
    if (tag === ORIENTATION) orientation = u16(entry + 8);
  }
  return compression !== 1 && orientation >= 2 && orientation <= 8 ? orientation : 1;
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

/**
 * Decoded images: what every host's decoder hands to the pipeline (PIL `convert('RGB')` bytes, or greyscale),
 * how large a decoder lets one become, and the RGBA -> RGB step the decoders share.
 */
import { fail } from '../errors.js';

/** An interleaved 8-bit image, row-major, `channels` bytes per pixel. */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

/** Encoded images with more pixels than this are refused from their header (decompression bombs). */
export const DEFAULT_MAX_PIXELS = 100_000_000;

export function checkMaxPixels(maxPixels: number): void {
  if (!Number.isSafeInteger(maxPixels) || maxPixels < 1) {
    fail('BAD_ARGUMENT', `maxPixels must be a positive integer, got ${maxPixels}`);
  }
}

/**
 * Frees the memory of a buffer this code allocated, now rather than at the next collection, where the host can
 * (ArrayBuffer.prototype.transfer: V8 from 11.4, so workerd, Deno, browsers and Node 22; a no-op on Node 20).
 * A decoded 16 M-pixel image is ~64 MB, and workerd's V8 left each one for a late collection, so that
 * sequential requests grew the isolate by ~90 MB each until it did. Only for buffers no caller can see, and
 * only where the view covers its whole buffer (never a slice of a pool such as Node's small Buffers).
 */
export function release(bytes: Uint8Array | Uint8ClampedArray): void {
  const buffer = bytes.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
  if (bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength) buffer.transfer?.(0);
}

/**
 * RGBA samples to RGB, alpha dropped as PIL's `convert('RGB')` does (not composited onto a background).
 * `shift` 8 keeps the high byte of 16-bit samples, as PIL does for 16-bit colour.
 */
export function rgbFromRgba(width: number, height: number, rgba: ArrayLike<number>, shift = 0): RawImage {
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    rgb[3 * i] = rgba[4 * i] >> shift;
    rgb[3 * i + 1] = rgba[4 * i + 1] >> shift;
    rgb[3 * i + 2] = rgba[4 * i + 2] >> shift;
  }
  return { width, height, channels: 3, data: rgb };
}

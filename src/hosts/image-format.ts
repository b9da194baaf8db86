/**
 * What every host's decoder does before decoding: recognise the format from the first bytes, and refuse an
 * image whose header declares more pixels than the caller allows (decompression bombs).
 */
import { fail } from '../errors.js';

export type EncodedFormat = 'jpeg' | 'png' | 'gif' | 'bmp' | 'webp';

const startsWith = (b: Uint8Array, magic: number[]) => b.length >= magic.length && magic.every((v, i) => b[i] === v);

/** JPEG starts FF D8 FF; PNG with its 8-byte signature; GIF with GIF87a or GIF89a; BMP with BM; WebP with RIFF....WEBP. */
export function sniffFormat(bytes: Uint8Array): EncodedFormat | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, [0x47, 0x49, 0x46, 0x38]) && (bytes[4] === 0x37 || bytes[4] === 0x39) && bytes[5] === 0x61) return 'gif';
  if (startsWith(bytes, [0x42, 0x4d])) return 'bmp';
  if (startsWith(bytes, [0x52, 0x49, 0x46, 0x46]) && String.fromCharCode(...bytes.subarray(8, 12)) === 'WEBP') return 'webp';
  return undefined;
}

/** Refuses a header's size when it is empty or over `maxPixels`. */
export function checkImageSize(size: { width: number; height: number }, name: string, maxPixels: number): void {
  const { width, height } = size;
  if (!(width >= 1 && height >= 1)) fail('BAD_IMAGE', `${name}: image has no size (${width}x${height})`);
  if (width * height > maxPixels) {
    fail('BAD_IMAGE', `${name}: ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels}`);
  }
}

/** A WebP's canvas size from its first chunk: VP8X (extended), VP8L (lossless) or VP8 (lossy). */
export function webpSize(b: Uint8Array, name: string): { width: number; height: number } {
  const chunk = b.length >= 30 ? String.fromCharCode(...b.subarray(12, 16)) : '';
  const u24 = (o: number) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16);
  if (chunk === 'VP8X') return { width: u24(24) + 1, height: u24(27) + 1 };
  if (chunk === 'VP8L' && b[20] === 0x2f) {
    const v = (b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24)) >>> 0;
    return { width: (v & 0x3fff) + 1, height: ((v >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8 ' && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a) {
    return { width: (b[26] | (b[27] << 8)) & 0x3fff, height: (b[28] | (b[29] << 8)) & 0x3fff };
  }
  return fail('BAD_IMAGE', `${name}: WebP without a readable VP8, VP8L or VP8X header`);
}

/**
 * What every host's decoder does before decoding: recognise the format from the first bytes, and refuse an
 * image whose header declares more pixels than the caller allows (decompression bombs).
 */
import { fail } from '../errors.js';

export type EncodedFormat = 'jpeg' | 'png' | 'gif' | 'bmp';

const startsWith = (b: Uint8Array, magic: number[]) => b.length >= magic.length && magic.every((v, i) => b[i] === v);

/** JPEG starts FF D8 FF; PNG with its 8-byte signature; GIF with GIF87a or GIF89a; BMP with BM. */
export function sniffFormat(bytes: Uint8Array): EncodedFormat | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, [0x47, 0x49, 0x46, 0x38]) && (bytes[4] === 0x37 || bytes[4] === 0x39) && bytes[5] === 0x61) return 'gif';
  if (startsWith(bytes, [0x42, 0x4d])) return 'bmp';
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

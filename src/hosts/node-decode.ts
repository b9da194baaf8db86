/**
 * Image files to RGB bytes on Node, equal to what the model's loader (torchvision `default_loader`:
 * PIL `Image.open(f).convert('RGB')`) produces: PNG, GIF and BMP by the decoders every host shares, the rest
 * (JPEG, WebP, TIFF, ...) with sharp (libvips).
 *
 * PIL's rules, and how sharp is made to follow them: no EXIF rotation (sharp only rotates when asked); the
 * embedded ICC profile is ignored (`ignoreIcc`); alpha is dropped, not composited; greyscale is replicated and
 * palettes expanded; the first frame of an animation. Two PIL conversions sharp does differently are done
 * here: CMYK -> RGB with PIL's naive formula (sharp would colour-manage), and 16-bit greyscale, which PIL
 * (signed too, in TIFF) opens as a 32-bit integer image and clips to 0..255 (sharp would scale). 16-bit colour
 * keeps its high byte, as in PIL's `;16` unpackers. Two TIFF tags are followed as Pillow follows them
 * (tiff-tags.ts): a compressed TIFF's Orientation, and 16-bit associated (premultiplied) alpha, which PIL
 * divides out of the high bytes.
 *
 * sharp is an optional dependency, loaded on the first decode: where it is not installed (`npm install
 * --omit=optional`, a deploy built for another platform), JPEG and WebP are decoded by the jSquash decoders
 * of the web hosts (src/hosts/web-decode.ts), and other formats sharp alone reads (TIFF, ...) are refused.
 */
import type { Metadata, Sharp, SharpOptions } from 'sharp';
import { checkMaxPixels, DEFAULT_MAX_PIXELS, type RawImage } from '../preprocess/raw-image.js';
import { readFileChecked } from './node.js';
import { decodeEncoded, type DecoderModules } from './web-decode.js';
import { inlineDecoderWasm } from './inline-decoders.js';
import { fail } from '../errors.js';
import { checkImageSize, sniffFormat } from './image-format.js';
import { applyOrientation, tiffOrientation, withUnassociatedAlpha } from './tiff-tags.js';

type SharpFactory = typeof import('sharp').default;

let sharpLoad: Promise<SharpFactory | undefined> | undefined;

/** sharp, or undefined where it cannot be loaded. */
function loadSharp(): Promise<SharpFactory | undefined> {
  return sharpLoad ??= import('sharp').then((m) => m.default, () => undefined);
}

/** The decoders used without sharp, compiled once. */
const jsquash: DecoderModules = (() => {
  const compiled = new Map<'jpeg' | 'webp', Promise<WebAssembly.Module>>();
  const get = (format: 'jpeg' | 'webp') => {
    let module = compiled.get(format);
    if (!module) compiled.set(format, module = inlineDecoderWasm(format).then((b) => WebAssembly.compile(b as Uint8Array<ArrayBuffer>)));
    return module;
  };
  return { jpeg: () => get('jpeg'), webp: () => get('webp') };
})();

export interface DecodedImage extends RawImage {
  channels: 3;
}

export interface DecodeOptions {
  /** Refuse images with more pixels than this (decompression bombs); default DEFAULT_MAX_PIXELS. */
  maxPixels?: number;
}

function reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

/** Pillow's MULDIV255: a * b / 255, rounded, in integers. */
function mulDiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

/** The header fields the decoder uses, the size known to be there. */
type Header = Metadata & { width: number; height: number };

/** Run a raw-output pipeline; its size must be the header's (one frame, no rotation). */
async function rawPixels(pipeline: Sharp, header: Header): Promise<Buffer> {
  const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
  if (info.width !== header.width || info.height !== header.height) {
    throw new Error(`decoded ${info.width}x${info.height}, the header says ${header.width}x${header.height}`);
  }
  return data;
}

/** The samples as PIL unpacks them to 8 bits: 16-bit ones keep their high byte (libvips would round). */
async function samples8(pipeline: Sharp, header: Header): Promise<Uint8Array> {
  if (header.depth !== 'ushort') return rawPixels(pipeline.raw(), header);
  const raw = Uint8Array.from(await rawPixels(pipeline.raw({ depth: 'ushort' }), header)); // a copy, aligned
  return Uint8Array.from(new Uint16Array(raw.buffer), (v) => v >> 8); // host byte order
}

/**
 * RGB bytes of an image sharp reads. `premultiplied`: 16-bit RGB with associated alpha, given with its alpha
 * relabelled unassociated so that libvips keeps the stored samples (tiff-tags.ts).
 */
async function decodeRgb(sharp: SharpFactory, bytes: Uint8Array, header: Header, options: SharpOptions,
                         premultiplied: boolean): Promise<Uint8Array> {
  const input = sharp(bytes, options);
  const { width, height } = header;
  const pixels = width * height;
  const rgb = new Uint8Array(pixels * 3);
  if (header.space === 'cmyk') {
    // Keeping the pipeline in CMYK gives the file's inks as stored (Adobe inversion undone, as PIL does).
    const cmyk = await samples8(input.removeAlpha().pipelineColourspace('cmyk').toColourspace('cmyk'), header);
    for (let i = 0; i < pixels; i++) {
      const k = 255 - cmyk[4 * i + 3];
      for (let c = 0; c < 3; c++) rgb[3 * i + c] = mulDiv255(255 - cmyk[4 * i + c], k);
    }
  } else if ((header.depth === 'ushort' || header.depth === 'short') && header.channels === 1) {
    // Unsigned or signed (TIFF) 16-bit grey: PIL's mode I, clipped to 0..255 by convert('RGB').
    const raw = Uint8Array.from(await rawPixels(input.toColourspace('grey16').raw({ depth: header.depth }), header));
    const grey = header.depth === 'short' ? new Int16Array(raw.buffer) : new Uint16Array(raw.buffer); // host byte order
    for (let i = 0; i < pixels; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = Math.min(Math.max(grey[i], 0), 255);
  } else if (premultiplied) {
    // PIL's RGBa;16 unpackers: the high bytes, colour divided by alpha in integers, clipped; 0 where alpha is 0.
    const rgba = await samples8(input.toColourspace('rgb16'), header);
    for (let i = 0; i < pixels; i++) {
      const alpha = rgba[4 * i + 3];
      for (let c = 0; c < 3; c++) rgb[3 * i + c] = alpha === 0 ? 0 : Math.min(Math.trunc(rgba[4 * i + c] * 255 / alpha), 255);
    }
  } else {
    rgb.set(await rawPixels(input.removeAlpha().toColourspace('srgb').raw(), header));
  }
  return rgb;
}

/** Decode an encoded image (JPEG, PNG, GIF, WebP, TIFF, ...); `name` is used in error messages. */
export async function decodeImageBytes(bytes: Uint8Array, name: string, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  checkMaxPixels(maxPixels);
  if (bytes.length === 0) fail('BAD_IMAGE', `${name}: empty file (0 bytes)`);
  // PNG, GIF and BMP: the decoders all hosts share (PIL's rules for damaged files and GIF canvases), through
  // the web hosts' dispatch, so the size check and the format routing are written once.
  const format = sniffFormat(bytes);
  if (format === 'png' || format === 'gif' || format === 'bmp') {
    return await decodeEncoded(bytes, name, jsquash, maxPixels) as DecodedImage;
  }
  const sharp = await loadSharp();
  if (!sharp) {
    if (!format) fail('BAD_IMAGE', `${name}: not a JPEG, PNG, GIF, WebP or BMP image (other formats need the optional sharp package: npm install sharp)`);
    return await decodeEncoded(bytes, name, jsquash, maxPixels) as DecodedImage;
  }
  // Header only: the size is checked before any pixel is decoded.
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    fail('BAD_IMAGE', `${name}: not a readable image (${reason(err)})`);
  }
  const { width = 0, height = 0 } = meta;
  checkImageSize({ width, height }, name, maxPixels);
  // failOn 'error': libjpeg/libpng warnings (which PIL ignores) pass; truncated or corrupt data does not.
  const options = { ignoreIcc: true, limitInputPixels: maxPixels, failOn: 'error', pages: 1 } as const;
  const header = { ...meta, width, height };
  const stored = meta.format === 'tiff' && meta.depth === 'ushort' && meta.channels === 4 && meta.space !== 'cmyk'
    ? withUnassociatedAlpha(bytes) : undefined;
  try {
    const image: DecodedImage = { width, height, channels: 3, data: await decodeRgb(sharp, stored ?? bytes, header, options, stored !== undefined) };
    return meta.format === 'tiff' ? applyOrientation(image, tiffOrientation(bytes)) as DecodedImage : image;
  } catch (err) {
    fail('BAD_IMAGE', `${name}: cannot decode image (${reason(err)})`);
  }
}

/** Read and decode an image file; errors name the file. */
export async function decodeImageFile(path: string, opts: DecodeOptions = {}): Promise<DecodedImage> {
  return decodeImageBytes(await readFileChecked(path, 'image'), path, opts);
}

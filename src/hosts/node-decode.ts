/**
 * Image files to RGB bytes on Node, equal to what the model's loader (torchvision `default_loader`:
 * PIL `Image.open(f).convert('RGB')`) produces, decoded with sharp (libvips).
 *
 * PIL's rules, and how sharp is made to follow them: no EXIF rotation (sharp only rotates when asked); the
 * embedded ICC profile is ignored (`ignoreIcc`); alpha is dropped, not composited; greyscale is replicated and
 * palettes expanded; the first frame of an animation. Two PIL conversions sharp does differently are done
 * here: CMYK -> RGB with PIL's naive formula (sharp would colour-manage), and 16-bit greyscale, which PIL
 * opens as a 32-bit integer image and clips to 0..255 (sharp would scale). 16-bit colour keeps its high byte
 * in both.
 *
 * sharp is an optional dependency, loaded on the first decode: where it is not installed (`npm install
 * --omit=optional`, a deploy built for another platform), JPEG and PNG are decoded by the jSquash decoders
 * of the web hosts (src/hosts/web-decode.ts), which give the same pixels, and other formats are refused.
 */
import type { Metadata, Sharp, SharpOptions } from 'sharp';
import { checkMaxPixels, DEFAULT_MAX_PIXELS, type RawImage } from '../preprocess/raw-image.js';
import { readFileChecked } from './node.js';
import { decodeEncoded, sniffFormat, type DecoderModules } from './web-decode.js';
import { inlineDecoderWasm } from './inline-decoders.js';
import { fail } from '../errors.js';

type SharpFactory = typeof import('sharp').default;

let sharpLoad: Promise<SharpFactory | undefined> | undefined;

/** sharp, or undefined where it cannot be loaded. */
function loadSharp(): Promise<SharpFactory | undefined> {
  return sharpLoad ??= import('sharp').then((m) => m.default, () => undefined);
}

/** The decoders used without sharp, compiled once. */
const jsquash: DecoderModules = (() => {
  const compiled = new Map<'jpeg' | 'png', Promise<WebAssembly.Module>>();
  const get = (format: 'jpeg' | 'png') => {
    let module = compiled.get(format);
    if (!module) compiled.set(format, module = inlineDecoderWasm(format).then((b) => WebAssembly.compile(b as Uint8Array<ArrayBuffer>)));
    return module;
  };
  return { jpeg: () => get('jpeg'), png: () => get('png') };
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

interface GifFrame0 {
  backdrop: number[];                   // RGB
  x0: number; y0: number; x1: number; y1: number;
}

/**
 * Where frame 0 of a GIF is transparent or does not reach, PIL shows the colour-table entry at the
 * transparency index (index 0 without one); libvips shows black or alpha 0. This reads that entry and the
 * frame's rectangle from the file.
 */
function gifFrame0(gif: Uint8Array): GifFrame0 {
  let table: Uint8Array | undefined = undefined;
  let transparent = 0;
  let rect = [0, 0, 0, 0];
  let p = 13;
  if (gif[10] & 0x80) {
    table = gif.subarray(p, p + (3 << ((gif[10] & 7) + 1)));
    p += table.length;
  }
  while (p < gif.length) {
    if (gif[p] === 0x21) {
      // Extension: label, then sub-blocks. Graphic control: 0x21 0xF9 0x04 flags delay(2) index 0x00.
      if (gif[p + 1] === 0xf9 && gif[p + 3] & 1) transparent = gif[p + 6];
      p += 2;
      while (p < gif.length && gif[p] !== 0) p += gif[p] + 1;
      p += 1;
    } else {
      // Frame 0's image descriptor: left, top, width, height (16-bit LE), flags, then a local colour table
      // that replaces the global one.
      if (gif[p] === 0x2c) {
        const u16 = (o: number) => gif[p + o] | (gif[p + o + 1] << 8);
        rect = [u16(1), u16(3), u16(1) + u16(5), u16(3) + u16(7)];
        if (gif[p + 9] & 0x80) table = gif.subarray(p + 10, p + 10 + (3 << ((gif[p + 9] & 7) + 1)));
      }
      break;
    }
  }
  const backdrop = table ? [0, 1, 2].map((c) => table[3 * transparent + c] ?? 0) : [transparent, transparent, transparent];
  const [x0, y0, x1, y1] = rect;
  return { backdrop, x0, y0, x1, y1 };
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

async function decodeRgb(sharp: SharpFactory, bytes: Uint8Array, header: Header, options: SharpOptions): Promise<Uint8Array> {
  const input = sharp(bytes, options);
  const { width, height } = header;
  const pixels = width * height;
  const rgb = new Uint8Array(pixels * 3);
  if (header.space === 'cmyk') {
    // Keeping the pipeline in CMYK gives the file's inks as stored (Adobe inversion undone, as PIL does).
    const cmyk = await rawPixels(input.removeAlpha().pipelineColourspace('cmyk').toColourspace('cmyk').raw(), header);
    for (let i = 0; i < pixels; i++) {
      const k = 255 - cmyk[4 * i + 3];
      for (let c = 0; c < 3; c++) rgb[3 * i + c] = mulDiv255(255 - cmyk[4 * i + c], k);
    }
  } else if (header.depth === 'ushort' && header.channels === 1) {
    const raw = await rawPixels(input.toColourspace('grey16').raw({ depth: 'ushort' }), header);
    const grey = new Uint16Array(Uint8Array.from(raw).buffer); // host byte order, as sharp writes it
    for (let i = 0; i < pixels; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = Math.min(grey[i], 255);
  } else if (header.format === 'gif') {
    const rgba = await rawPixels(input.toColourspace('srgb').ensureAlpha().raw(), header);
    const { backdrop, x0, y0, x1, y1 } = gifFrame0(bytes);
    for (let y = 0, i = 0; y < height; y++) {
      for (let x = 0; x < width; x++, i++) {
        const shown = rgba[4 * i + 3] !== 0 && x >= x0 && x < x1 && y >= y0 && y < y1;
        for (let c = 0; c < 3; c++) rgb[3 * i + c] = shown ? rgba[4 * i + c] : backdrop[c];
      }
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
  const sharp = await loadSharp();
  if (!sharp) {
    if (!sniffFormat(bytes)) fail('BAD_IMAGE', `${name}: not a JPEG or PNG image (other formats need the optional sharp package: npm install sharp)`);
    return await decodeEncoded(bytes, name, jsquash, maxPixels) as DecodedImage;
  }
  // Header only: the size is checked before any pixel is decoded.
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    fail('BAD_IMAGE', `${name}: not a readable image (${reason(err)})`);
  }
  const { width, height } = meta;
  if (!width || !height) fail('BAD_IMAGE', `${name}: image has no size`);
  if (width * height > maxPixels) {
    fail('BAD_IMAGE', `${name}: ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels}`);
  }
  // failOn 'error': libjpeg/libpng warnings (which PIL ignores) pass; truncated or corrupt data does not.
  const options = { ignoreIcc: true, limitInputPixels: maxPixels, failOn: 'error', pages: 1 } as const;
  try {
    return { width, height, channels: 3, data: await decodeRgb(sharp, bytes, { ...meta, width, height }, options) };
  } catch (err) {
    fail('BAD_IMAGE', `${name}: cannot decode image (${reason(err)})`);
  }
}

/** Read and decode an image file; errors name the file. */
export async function decodeImageFile(path: string, opts: DecodeOptions = {}): Promise<DecodedImage> {
  return decodeImageBytes(await readFileChecked(path, 'image'), path, opts);
}

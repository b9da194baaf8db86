/**
 * Encoded images to RGB pixels on every host without sharp (browsers, web workers, Deno, workerd), following
 * the same PIL rules as src/hosts/node-decode.ts, so every host feeds the model the same pixels. PNG, GIF and
 * BMP go to the decoders every host shares (png-decode.ts, gif-decode.ts, bmp-decode.ts); JPEG to MozJPEG, here.
 *
 * The JPEG decoder: jSquash's `@jsquash/jpeg`, the Squoosh app's WebAssembly build of MozJPEG, the same
 * libjpeg-turbo code that sharp's libvips and Pillow are built with. Chosen over the pure-JS `jpeg-js`,
 * which differs by up to 40 levels on most pixels (it upsamples chroma by replication and uses another
 * IDCT); no pure-JS decoder reproduces libjpeg's "fancy" upsampling. It takes an already compiled
 * WebAssembly.Module, which is what workerd's and bundlers' `.wasm` imports give, so it never fetches
 * anything by itself. Measurements: docs/API.md, "Decoding".
 *
 * PIL's rules for JPEG: no EXIF rotation; no ICC colour management; greyscale replicated. Not supported here:
 * CMYK/YCCK JPEG (this build of libjpeg converts only to RGB; sharp's host decodes it).
 */
import mozjpegFactory from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';
import webpFactory from '@jsquash/webp/codec/dec/webp_dec.js';
import { EmscriptenCodec, type DecodedRgba } from './emscripten-codec.js';
import { checkImageSize, sniffFormat, webpSize } from './image-format.js';
import { DEFAULT_MAX_PIXELS, release, rgbFromRgba, type RawImage } from '../preprocess/raw-image.js';
import { fail } from '../errors.js';

/** The compiled JPEG and WebP decoder modules, obtained lazily (only when such an image is first classified). */
export interface DecoderModules {
  jpeg(): Promise<WebAssembly.Module>;
  webp(): Promise<WebAssembly.Module>;
}

interface Header {
  width: number;
  height: number;
  /** PNG: bit depth and colour type (IHDR); JPEG: number of components. */
  depth: number;
  colorType: number;
}

function jpegHeader(b: Uint8Array, name: string): Header {
  // Walk the marker segments to the first SOFn (C0-CF except C4 DHT, C8 JPG, CC DAC).
  let p = 2;
  while (p + 4 <= b.length) {
    // libjpeg skips junk before a marker with a warning ("extraneous bytes before marker"); so does this walk.
    if (b[p] !== 0xff) { p += 1; continue; }
    const marker = b[p + 1];
    if (marker === 0xff) { p += 1; continue; }             // fill byte
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { p += 2; continue; }
    if (marker === 0xd9 || marker === 0xda) break;          // EOI / SOS before any frame header
    const length = (b[p + 2] << 8) | b[p + 3];
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (p + 10 > b.length) break;
      return { height: (b[p + 5] << 8) | b[p + 6], width: (b[p + 7] << 8) | b[p + 8], depth: b[p + 9], colorType: marker };
    }
    p += 2 + length;
  }
  return fail('BAD_IMAGE', `${name}: JPEG without a frame header (truncated or corrupt)`);
}

interface MozJpeg {
  decode(data: Uint8Array, preserveOrientation: boolean): DecodedRgba | null;
}

interface LibWebp {
  decode(data: Uint8Array): DecodedRgba | null;
}

/** The codecs of one set of modules; each keeps one instance (created on first use). */
const codecs = new WeakMap<DecoderModules, { jpeg: EmscriptenCodec<MozJpeg>; webp: EmscriptenCodec<LibWebp> }>();

function codecsOf(modules: DecoderModules) {
  let c = codecs.get(modules);
  if (!c) {
    c = { jpeg: new EmscriptenCodec<MozJpeg>(mozjpegFactory as never, modules.jpeg), webp: new EmscriptenCodec<LibWebp>(webpFactory as never, modules.webp) };
    codecs.set(modules, c);
  }
  return c;
}

async function decodeJpeg(bytes: Uint8Array, header: Header, name: string, modules: DecoderModules): Promise<RawImage> {
  if (header.depth !== 1 && header.depth !== 3) {
    fail('BAD_IMAGE', `${name}: ${header.depth}-component (CMYK/YCCK) JPEG is not supported on this host (Node's sharp decodes it)`);
  }
  let run: { result: DecodedRgba | null; messages: string[] };
  try {
    run = await codecsOf(modules).jpeg.run((m) => m.decode(bytes, false));
  } catch (err) {
    return fail('BAD_IMAGE', `${name}: cannot decode JPEG (${(err as Error).message})`);
  }
  const { result, messages } = run;
  if (!result) return fail('BAD_IMAGE', `${name}: cannot decode JPEG (${messages.join('; ') || 'no image'})`);
  // libjpeg only warns on a truncated file (and fills the rest with grey); PIL and sharp refuse it, so this
  // host does too. Other warnings pass, as they do for PIL and sharp: extraneous bytes, and entropy-coded
  // data that ends early inside a complete file ("premature end of data segment": decoded, grey after it).
  if (messages.some((m) => /premature end of JPEG file/i.test(m))) {
    return fail('BAD_IMAGE', `${name}: cannot decode JPEG (${messages.join('; ')})`);
  }
  const rgb = rgbFromRgba(result.width, result.height, result.data);
  release(result.data);
  return rgb;
}

async function decodeWebp(bytes: Uint8Array, name: string, modules: DecoderModules): Promise<RawImage> {
  // VP8X's animation flag: jSquash's build decodes still images only (libwebp's WebPDecode).
  const animated = String.fromCharCode(...bytes.subarray(12, 16)) === 'VP8X' && (bytes[20] & 0x02) !== 0;
  if (animated) fail('BAD_IMAGE', `${name}: animated WebP is not supported on this host (Node's sharp decodes its first frame)`);
  let result: DecodedRgba | null;
  try {
    ({ result } = await codecsOf(modules).webp.run((m) => m.decode(bytes)));
  } catch (err) {
    return fail('BAD_IMAGE', `${name}: cannot decode WebP (${(err as Error).message})`);
  }
  if (!result) return fail('BAD_IMAGE', `${name}: cannot decode WebP (damaged)`);
  const rgb = rgbFromRgba(result.width, result.height, result.data);
  release(result.data);
  return rgb;
}

/**
 * Decodes JPEG, PNG, GIF, WebP or BMP bytes to RGB as PIL's `Image.open(f).convert('RGB')` does. The size is read from
 * the header and checked against `maxPixels` before any pixel is decoded.
 */
export async function decodeEncoded(bytes: Uint8Array, name: string, modules: DecoderModules,
                                    maxPixels = DEFAULT_MAX_PIXELS): Promise<RawImage> {
  if (bytes.length === 0) fail('BAD_IMAGE', `${name}: empty file (0 bytes)`);
  const format = sniffFormat(bytes);
  // Imported when first needed, so that a browser bundle's first chunk stays small (the bundlers split them off).
  if (format === 'png') {
    const { decodePng, pngSize } = await import('./png-decode.js');
    checkImageSize(pngSize(bytes, name), name, maxPixels);
    return decodePng(bytes, name);
  }
  if (format === 'gif') return (await import('./gif-decode.js')).decodeGif(bytes, name, maxPixels);
  if (format === 'bmp') return (await import('./bmp-decode.js')).decodeBmp(bytes, name, maxPixels);
  if (format === 'webp') {
    checkImageSize(webpSize(bytes, name), name, maxPixels);
    return decodeWebp(bytes, name, modules);
  }
  if (format === 'jpeg') {
    const header = jpegHeader(bytes, name);
    checkImageSize(header, name, maxPixels);
    return decodeJpeg(bytes, header, name, modules);
  }
  return fail('BAD_IMAGE', `${name}: not a JPEG, PNG, GIF, WebP or BMP image (the formats this host decodes)`);
}

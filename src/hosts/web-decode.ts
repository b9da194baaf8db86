/**
 * JPEG and PNG bytes to RGB pixels on every host without sharp (browsers, web workers, Deno, workerd),
 * following the same PIL rules as src/hosts/node-decode.ts, so every host feeds the model the same pixels.
 *
 * The decoder: jSquash (`@jsquash/jpeg`, `@jsquash/png`), WebAssembly builds of the Squoosh app's codecs.
 * Chosen over the pure-JS pair (`jpeg-js` + `fast-png`) because its JPEG decoder is MozJPEG, the same
 * libjpeg-turbo code that sharp's libvips is built with: on the test fixtures (baseline, progressive, 4:2:0,
 * 4:4:4, greyscale) its pixels equal sharp's bit for bit, where jpeg-js differs by up to 40 levels on most
 * pixels (it upsamples chroma by replication and uses another IDCT), and no pure-JS decoder reproduces
 * libjpeg's "fancy" upsampling. Its PNG decoder (the Rust `png` crate) is lossless, so it equals sharp
 * exactly; 16-bit output is asked for so that PIL's 16-bit greyscale rule (clip to 255) can be applied.
 * Both take an already compiled WebAssembly.Module, which is what workerd's and bundlers' `.wasm` imports
 * give, so the codecs never fetch anything by themselves. Measurements: docs/API.md, "Decoding".
 *
 * PIL's rules: no EXIF rotation; no ICC colour management; alpha dropped (not composited); greyscale
 * replicated; palettes expanded; 16-bit greyscale clipped to 0..255 (PIL opens it as a 32-bit integer
 * image), other 16-bit images keep the high byte. Not supported here: CMYK/YCCK JPEG (libjpeg cannot
 * convert it to RGB; sharp's host can), and formats other than JPEG and PNG (browsers fall back to the
 * canvas for those, see web.ts).
 */
import mozjpegFactory from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';
import { decodePngRgba16 } from './png-codec.js';
import { DEFAULT_MAX_PIXELS, rgbFromRgba, type RawImage } from '../preprocess/raw-image.js';
import { fail } from '../errors.js';

export type EncodedFormat = 'jpeg' | 'png';

/** The compiled decoder modules, obtained lazily (only when an encoded image is first classified). */
export interface DecoderModules {
  jpeg(): Promise<WebAssembly.Module>;
  png(): Promise<WebAssembly.Module>;
}

/** JPEG starts FF D8 FF; PNG with its 8-byte signature. */
export function sniffFormat(bytes: Uint8Array): EncodedFormat | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && png.every((b, i) => bytes[i] === b)) return 'png';
  return undefined;
}

interface Header {
  width: number;
  height: number;
  /** PNG: bit depth and colour type (IHDR); JPEG: number of components. */
  depth: number;
  colorType: number;
}

function pngHeader(b: Uint8Array, name: string): Header {
  // Signature (8), chunk length (4), "IHDR", width, height (u32 BE), bit depth, colour type.
  const isIhdr = b.length >= 26 && b[12] === 0x49 && b[13] === 0x48 && b[14] === 0x44 && b[15] === 0x52;
  if (!isIhdr) fail('BAD_IMAGE', `${name}: PNG without an IHDR chunk`);
  const u32 = (o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  return { width: u32(16), height: u32(20), depth: b[24], colorType: b[25] };
}

function jpegHeader(b: Uint8Array, name: string): Header {
  // Walk the marker segments to the first SOFn (C0-CF except C4 DHT, C8 JPG, CC DAC).
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) fail('BAD_IMAGE', `${name}: corrupt JPEG (no marker at byte ${p})`);
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

function checkSize(h: Header, name: string, maxPixels: number): void {
  if (h.width < 1 || h.height < 1) fail('BAD_IMAGE', `${name}: image has no size (${h.width}x${h.height})`);
  const pixels = h.width * h.height;
  if (pixels > maxPixels) {
    fail('BAD_IMAGE', `${name}: ${h.width}x${h.height} = ${pixels} pixels, over the limit of ${maxPixels}`);
  }
}

// ---- JPEG: the MozJPEG Emscripten module, driven directly so that its one JS dependency can be scoped.

interface MozJpeg {
  decode(data: Uint8Array, preserveOrientation: boolean): { data: Uint8ClampedArray; width: number; height: number } | null;
}

let jpegModule: Promise<MozJpeg> | undefined;
let jpegMessages: string[] = [];

function mozjpeg(modules: DecoderModules): Promise<MozJpeg> {
  return jpegModule ??= modules.jpeg().then((wasm) => mozjpegFactory({
    noInitialRun: true,
    // Never let Emscripten look for its .wasm file itself (workerd has no import.meta.url to resolve from).
    locateFile: (file: string) => file,
    instantiateWasm(imports: WebAssembly.Imports, ready: (instance: WebAssembly.Instance) => void) {
      const instance = new WebAssembly.Instance(wasm, imports);
      ready(instance);
      return instance.exports;
    },
    // libjpeg's messages ("Unsupported color conversion request", "Premature end of JPEG file") go into the
    // error we throw, not to the console.
    print: () => {},
    printErr: (line: string) => { jpegMessages.push(line); },
  } as unknown as Parameters<typeof mozjpegFactory>[0]) as unknown as Promise<MozJpeg>).catch((err) => {
    jpegModule = undefined;
    throw err;
  });
}

/**
 * The codec builds its result with `new ImageData(...)`, which workerd and some runtimes lack. A plain
 * stand-in is put on globalThis for the synchronous decode call only, and removed after.
 */
class PlainImageData {
  constructor(readonly data: Uint8ClampedArray, readonly width: number, readonly height: number) {}
}

async function decodeJpeg(bytes: Uint8Array, header: Header, name: string, modules: DecoderModules): Promise<RawImage> {
  if (header.depth !== 1 && header.depth !== 3) {
    fail('BAD_IMAGE', `${name}: ${header.depth}-component (CMYK/YCCK) JPEG is not supported on this host (Node's sharp decodes it)`);
  }
  const codec = await mozjpeg(modules);
  const g = globalThis as { ImageData?: unknown };
  const shim = typeof g.ImageData === 'undefined';
  if (shim) g.ImageData = PlainImageData;
  jpegMessages = [];
  let result: ReturnType<MozJpeg['decode']>;
  try {
    result = codec.decode(bytes, false);
  } catch (err) {
    jpegModule = undefined; // after an exit() inside libjpeg, start from a fresh instance
    const why = jpegMessages.join('; ') || (err instanceof Error ? err.message : String(err));
    return fail('BAD_IMAGE', `${name}: cannot decode JPEG (${why})`);
  } finally {
    if (shim) delete g.ImageData;
  }
  if (!result) return fail('BAD_IMAGE', `${name}: cannot decode JPEG (${jpegMessages.join('; ') || 'no image'})`);
  // libjpeg only warns on truncated data (and fills the rest with grey); sharp (failOn 'error') refuses
  // it, so this host does too. Other warnings (extraneous bytes, ...) pass, as they do for sharp and PIL.
  if (jpegMessages.some((m) => /premature end/i.test(m))) {
    return fail('BAD_IMAGE', `${name}: cannot decode JPEG (${jpegMessages.join('; ')})`);
  }
  return rgbFromRgba(result.width, result.height, result.data);
}

// ---- PNG: the Rust png crate through wasm-bindgen, always at 16 bits a sample.

async function decodePngBytes(bytes: Uint8Array, header: Header, name: string, modules: DecoderModules): Promise<RawImage> {
  const wasm = await modules.png();
  let image: ReturnType<typeof decodePngRgba16>;
  try {
    // Not jSquash's binding, which leaks what a failed decode allocated (src/hosts/png-codec.ts).
    image = decodePngRgba16(wasm, bytes);
  } catch (err) {
    return fail('BAD_IMAGE', `${name}: cannot decode PNG (${err instanceof Error ? err.message : String(err)})`);
  }
  try {
    const { width, height } = image;
    const data = image.data; // a view of the codec's memory: read before free()
    if (width !== header.width || height !== header.height) {
      fail('BAD_IMAGE', `${name}: decoded ${width}x${height}, the header says ${header.width}x${header.height}`);
    }
    // Colour type 0 (greyscale) at 16 bits: PIL mode I, converted to RGB by clipping. Everything else
    // (8-bit images widened by the codec as v * 257, 16-bit colour, 16-bit grey + alpha): the high byte.
    if (header.colorType !== 0 || header.depth !== 16) return rgbFromRgba(width, height, data, 8);
    const n = width * height;
    const rgb = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = Math.min(data[4 * i], 255);
    return { width, height, channels: 3, data: rgb };
  } finally {
    image.free();
  }
}

/**
 * Decodes JPEG or PNG bytes to RGB as PIL's `Image.open(f).convert('RGB')` does. The size is read from the
 * header and checked against `maxPixels` before any pixel is decoded.
 */
export async function decodeEncoded(bytes: Uint8Array, name: string, modules: DecoderModules,
                                    maxPixels = DEFAULT_MAX_PIXELS): Promise<RawImage> {
  if (bytes.length === 0) fail('BAD_IMAGE', `${name}: empty file (0 bytes)`);
  const format = sniffFormat(bytes);
  if (format === 'png') {
    const header = pngHeader(bytes, name);
    checkSize(header, name, maxPixels);
    return decodePngBytes(bytes, header, name, modules);
  }
  if (format === 'jpeg') {
    const header = jpegHeader(bytes, name);
    checkSize(header, name, maxPixels);
    return decodeJpeg(bytes, header, name, modules);
  }
  return fail('BAD_IMAGE', `${name}: not a JPEG or PNG image (the formats this host decodes)`);
}

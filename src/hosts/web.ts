/**
 * The host for the web platform: browsers (window and web workers), Deno and workerd. No Node built-ins, no
 * DOM requirement: what a host lacks (a canvas in workerd, file access in browsers) is looked up at call
 * time. The entries (browser.ts, worker.ts and the generated Deno entry) differ only in where the
 * WebAssembly comes from by default.
 */
import type { ImageInput, LoadOptions, ModelSource, WasmSource } from '../api.js';
import { createClassifier, type ImageClassifier } from '../classifier.js';
import { rgbFromRgba, type RawImage } from '../preprocess/raw-image.js';
import { compileWasm, fetchBytes, fetchLimits, isByteSource, sourceBytes, type ReadOptions } from './loading.js';
import { checkLoadOptions, LOAD_OPTION_NAMES } from './load-options.js';
import { imageDecoder, type ImageHost } from './image-input.js';
import { decodeEncoded, type DecoderModules } from './web-decode.js';
import { sniffFormat } from './image-format.js';
import { createWebThreads } from './web-threads.js';
import { checkOptions, fail } from '../errors.js';

/**
 * An image: every form of the input contract (src/api.ts `ImageInput`; encoded JPEG, PNG, GIF, WebP or BMP,
 * other formats through the canvas where there is one; paths in Deno), or anything a canvas can draw
 * (ImageBitmap, HTMLImageElement, HTMLCanvasElement, OffscreenCanvas, VideoFrame).
 */
export type WebImage = ImageInput | DrawableImage;

/** What `drawImage` accepts, typed loosely so that this module needs no DOM typings. */
export type DrawableImage = { width: number; height: number } | { naturalWidth: number; naturalHeight: number }
  | { displayWidth: number; displayHeight: number } | { videoWidth: number; videoHeight: number };

export interface WebLoadOptions extends LoadOptions {
  /** The JPEG and WebP decoders' WebAssembly (`@jsquash/jpeg`'s mozjpeg_dec.wasm, `@jsquash/webp`'s webp_dec.wasm); each has a default. */
  decoders?: { jpeg?: WasmSource; webp?: WasmSource };
}

const WEB_LOAD_OPTION_NAMES: Record<keyof WebLoadOptions, true> = { ...LOAD_OPTION_NAMES, decoders: true };
const DECODER_NAMES: Record<'jpeg' | 'webp', true> = { jpeg: true, webp: true };

export type WebClassifier = ImageClassifier<WebImage>;

/** Where an entry finds its WebAssembly when the caller does not say (asked for on first use). */
export interface WebDefaults {
  wasm: () => WasmSource | Promise<WasmSource>;
  jpeg: () => WasmSource | Promise<WasmSource>;
  webp: () => WasmSource | Promise<WasmSource>;
  /** For threads > 1 (web-threads.ts): the kernels' threads build and the workers' module; absent: one thread only. */
  threads?: { wasm: () => WasmSource | Promise<WasmSource>; worker: () => URL | string };
}

interface DenoLike {
  readFile(path: string | URL): Promise<Uint8Array>;
}

const deno = (): DenoLike | undefined => (globalThis as { Deno?: DenoLike }).Deno;

/** A string with a scheme (http:, https:, file:, data:, blob:) is a URL; anything else is a path in Deno. */
const hasScheme = (s: string) => /^[a-z][a-z0-9+.-]*:/i.test(s) && !/^[a-z]:[\\/]/i.test(s);

/**
 * Strings and URLs, the web hosts' `ReadPath` (loading.ts): Deno reads paths and file: URLs from disk (needs
 * --allow-read), everything else is fetched.
 */
export async function readWebSource(source: URL | string, what: string, options: ReadOptions = {}): Promise<{ bytes: Uint8Array; name: string }> {
  const name = String(source).split(/[\\/]/).pop() || what;
  const d = deno();
  const isFile = source instanceof URL ? source.protocol === 'file:' : !hasScheme(source) || source.startsWith('file:');
  if (d && isFile) {
    const target = typeof source === 'string' && source.startsWith('file:') ? new URL(source) : source;
    try {
      const bytes = await d.readFile(target);
      options.onProgress?.({ loaded: bytes.length, total: bytes.length });
      return { bytes, name };
    } catch (err) {
      const kind = err instanceof Error ? err.name : '';
      const why = kind === 'NotFound' ? 'no such file'
        : kind === 'PermissionDenied' || kind === 'NotCapable' ? 'read permission denied (deno run --allow-read=...)'
        : err instanceof Error ? err.message : String(err);
      return fail(what === 'image' ? 'BAD_IMAGE' : 'BAD_ARGUMENT', `${String(source)}: ${why}`);
    }
  }
  return { bytes: await fetchBytes(source, String(source), options), name };
}

function drawableSize(v: object): { width: number; height: number } | undefined {
  const o = v as Record<string, unknown>;
  for (const [w, h] of [['naturalWidth', 'naturalHeight'], ['videoWidth', 'videoHeight'], ['displayWidth', 'displayHeight'], ['width', 'height']]) {
    if (typeof o[w] === 'number' && typeof o[h] === 'number') return { width: o[w] as number, height: o[h] as number };
  }
  return undefined;
}

interface Canvas2D {
  drawImage(image: unknown, x: number, y: number): void;
  getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
}

/** A 2D context to read pixels from: OffscreenCanvas (workers, modern browsers) or a DOM canvas. */
function canvas2d(width: number, height: number): Canvas2D | undefined {
  const g = globalThis as Record<string, unknown>;
  const attrs = { willReadFrequently: true, colorSpace: 'srgb' };
  if (typeof g.OffscreenCanvas === 'function') {
    const canvas = new (g.OffscreenCanvas as new (w: number, h: number) => { getContext(t: string, a: object): unknown })(width, height);
    const ctx = canvas.getContext('2d', attrs) as Canvas2D | null;
    if (ctx) return ctx;
  }
  const doc = g.document as { createElement(t: string): { width: number; height: number; getContext(t: string, a: object): unknown } } | undefined;
  if (doc) {
    const canvas = doc.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    return (canvas.getContext('2d', attrs) as Canvas2D | null) ?? undefined;
  }
  return undefined;
}

function drawToPixels(image: object, size: { width: number; height: number }, maxPixels: number): RawImage {
  const { width, height } = size;
  if (!(width >= 1 && height >= 1)) fail('BAD_IMAGE', `image has no size (${width}x${height}); is it loaded?`);
  if (width * height > maxPixels) {
    fail('BAD_IMAGE', `image: ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels}`);
  }
  const ctx = canvas2d(width, height)
    ?? fail('BAD_IMAGE', 'this host has no canvas to draw the image on: pass JPEG, PNG, GIF, WebP or BMP bytes, or ImageData');
  ctx.drawImage(image, 0, 0);
  const { data } = ctx.getImageData(0, 0, width, height);
  return rgbFromRgba(width, height, data);
}

/**
 * The last resort, for formats no decoder here reads (AVIF, TIFF in Safari, ICO, ...), where the host can decode
 * them: createImageBitmap + canvas. Not PIL-exact: the canvas stores premultiplied alpha and may colour-manage.
 */
async function decodeWithCanvas(bytes: Uint8Array, name: string, maxPixels: number): Promise<RawImage> {
  const g = globalThis as { createImageBitmap?: (b: Blob, o: object) => Promise<{ width: number; height: number; close(): void }> };
  if (typeof g.createImageBitmap !== 'function' || !canvas2d(1, 1)) {
    return fail('BAD_IMAGE', `${name}: not a JPEG, PNG, GIF, WebP or BMP image (the formats this host decodes without a canvas)`);
  }
  let bitmap;
  try {
    bitmap = await g.createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (err) {
    return fail('BAD_IMAGE', `${name}: not a readable image (${err instanceof Error ? err.message : String(err)})`);
  }
  try {
    return drawToPixels(bitmap, bitmap, maxPixels);
  } finally {
    bitmap.close();
  }
}

async function decodeBytes(bytes: Uint8Array, name: string, modules: DecoderModules, maxPixels: number): Promise<RawImage> {
  if (bytes.length > 0 && !sniffFormat(bytes)) return decodeWithCanvas(bytes, name, maxPixels);
  return decodeEncoded(bytes, name, modules, maxPixels);
}

/** The web hosts' images: fetched (Deno: files too), decoded by web-decode.ts, drawables through a canvas. */
const webImages = (modules: DecoderModules): ImageHost => ({
  read: readWebSource,
  decode: (bytes, name, maxPixels) => decodeBytes(bytes, name, modules, maxPixels),
  draw: (image, maxPixels) => {
    const size = drawableSize(image);
    return size && drawToPixels(image, size, maxPixels);
  },
  forms: 'bytes, a Blob, a Response, a URL (a path in Deno), ImageData or pixels, an ImageBitmap or a drawable element, '
    + 'or a preprocessed Float32Array',
});

/** Compiles once per source object; default sources are compiled once per page/isolate. */
function lazyModule(source: () => WasmSource | Promise<WasmSource>, what: string): () => Promise<WebAssembly.Module> {
  let compiled: Promise<WebAssembly.Module> | undefined;
  return () => compiled ??= Promise.resolve(source()).then((s) => compileWasm(s, async (url) => (await readWebSource(url, what)).bytes, what)).catch((err) => {
    compiled = undefined;
    throw err;
  });
}

/** One set of decoder modules per entry: the codecs keep a single instance each (web-decode.ts). */
let decoders: DecoderModules | undefined;

/** The realm's decoder modules: the codecs hold one instance each, so the first caller's choice is kept. */
function realmDecoders(defaults: WebDefaults, given: WebLoadOptions['decoders'] = {}): DecoderModules {
  return decoders ??= {
    jpeg: lazyModule(() => given.jpeg ?? defaults.jpeg(), 'mozjpeg_dec.wasm'),
    webp: lazyModule(() => given.webp ?? defaults.webp(), 'webp_dec.wasm'),
  };
}

/** An entry's `loadClassifier` and `decodeImage`, with its default WebAssembly. */
export function webHost(defaults: WebDefaults) {
  const kernels = lazyModule(defaults.wasm, 'vimedge.wasm');
  const threadsKernels = defaults.threads && lazyModule(defaults.threads.wasm, 'vimedge.mt.wasm');
  const decodeImage = imageDecoder<WebImage>(() => webImages(realmDecoders(defaults)));
  async function loadClassifier(source: ModelSource, options: WebLoadOptions = {}): Promise<WebClassifier> {
    const threads = checkLoadOptions(options, WEB_LOAD_OPTION_NAMES);
    checkOptions(options.decoders, 'decoders', DECODER_NAMES);
    if (!isByteSource(source)) fail('BAD_ARGUMENT', 'model: expected bytes, a URL, a path (Deno), a Response or a Blob');
    if (threads > 1 && !defaults.threads) fail('BAD_ARGUMENT', 'threads > 1 needs Web Workers; this host runs one thread');
    const { onProgress, signal } = options;
    const limits = fetchLimits(options.fetch);
    const modules = realmDecoders(defaults, options.decoders);
    // With threads, a wasm given is the threads build (the Deno entry passes its own); else the default one.
    const wasm = options.wasm !== undefined ? await compileWasm(options.wasm, async (url) => (await readWebSource(url, 'vimedge.wasm', limits)).bytes, 'vimedge.wasm')
      : threads > 1 ? await threadsKernels!() : await kernels();
    const { bytes, name } = await sourceBytes(source, 'model', readWebSource, { ...limits, onProgress, signal });
    return createClassifier({
      model: bytes, name, kernels: wasm, images: webImages(modules), limits, convert: options.convert, maxMemory: options.maxMemory,
      threads: threads > 1 ? await createWebThreads(threads, wasm, defaults.threads!.worker()) : undefined, signal,
    });
  }
  return { loadClassifier, decodeImage };
}

/**
 * The one input contract (src/api.ts `ImageInput`), resolved the same way on every host: a preprocessed
 * tensor is passed through, pixels are taken as they are, bytes in any form are read and decoded. The host
 * supplies only what differs: how paths and URLs are read, its decoder, and (browsers) a canvas for drawables.
 */
import type { Pixels } from '../api.js';
import { preprocess as pipeline, type PreprocessSpec } from '../preprocess/pipeline.js';
import { checkMaxPixels, DEFAULT_MAX_PIXELS, rgbFromRgba, type RawImage } from '../preprocess/raw-image.js';
import { isByteSource, sourceBytes, type ReadOptions, type ReadPath } from './loading.js';
import { checkOptions, fail } from '../errors.js';

export interface ImageHost {
  /** Paths and URLs, the host's way. */
  read: ReadPath;
  /** Encoded bytes to pixels, refusing more than maxPixels from the header. */
  decode(bytes: Uint8Array, name: string, maxPixels: number): Promise<RawImage>;
  /** Browsers: the pixels of anything a canvas draws (ImageBitmap, elements); undefined when it is not one. */
  draw?(image: object, maxPixels: number): RawImage | undefined;
  /** The forms this host takes, for the error that refuses anything else. */
  forms: string;
}

/** Pixels to preprocess; `owned` when they were made here (decoded, converted from RGBA, drawn), not the caller's. */
export interface ResolvedPixels {
  pixels: RawImage;
  owned: boolean;
}

/** Pixels given directly, recognised by shape; undefined when `value` is not shaped as pixels. */
function asPixels(value: unknown, maxPixels: number): ResolvedPixels | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { width, height, channels, data } = value as Partial<Pixels>;
  if (typeof width !== 'number' || typeof height !== 'number' || !(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) return undefined;
  if (width * height > maxPixels) fail('BAD_IMAGE', `image: ${width}x${height} pixels, over the limit of ${maxPixels}`);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (channels === 1 || channels === 3) return { pixels: { width, height, channels, data: bytes }, owned: false };   // the pipeline checks the size
  if ((channels === undefined || channels === 4) && data.length === width * height * 4) return { pixels: rgbFromRgba(width, height, bytes), owned: true };
  return fail('BAD_IMAGE', `image: pixels of ${width}x${height} with ${data.length} bytes and channels ${String(channels)}; `
    + 'expected channels 1, 3 or 4 with width * height * channels bytes (RGBA without channels, as ImageData)');
}

/** Any image input as the pixels to preprocess, or the Float32Array the caller preprocessed already. */
export async function resolveImage(image: unknown, host: ImageHost, maxPixels: number,
                                   options: ReadOptions): Promise<ResolvedPixels | Float32Array> {
  if (image instanceof Float32Array) return image;
  const given = asPixels(image, maxPixels);
  if (given) return given;
  if (isByteSource(image)) {
    const { bytes, name } = await sourceBytes(image, 'image', host.read, options);
    return { pixels: await host.decode(bytes, name, maxPixels), owned: true };
  }
  const drawn = image !== null && typeof image === 'object' ? host.draw?.(image, maxPixels) : undefined;
  return drawn ? { pixels: drawn, owned: true } : fail('BAD_IMAGE', `image: expected ${host.forms}`);
}

/** The options of `decodeImage`: the pixel limit `classify` applies. */
export interface DecodeImageOptions {
  maxPixels?: number;
}

/**
 * A host's public `decodeImage(image, options?)`: any image input but a tensor, as the RGB (or greyscale)
 * pixels `classify` preprocesses, without a model. `host` is asked on each call (the web hosts make their
 * decoders on first use).
 */
export function imageDecoder<Image>(host: () => ImageHost) {
  return async (image: Image, options?: DecodeImageOptions): Promise<RawImage> => {
    const { maxPixels = DEFAULT_MAX_PIXELS } = checkOptions(options, 'decodeImage options', { maxPixels: true });
    checkMaxPixels(maxPixels);
    const resolved = await resolveImage(image, host(), maxPixels, {});
    return resolved instanceof Float32Array ? fail('BAD_ARGUMENT', 'decodeImage: a Float32Array is a preprocessed tensor, not an image') : resolved.pixels;
  };
}

/**
 * Pixels to the model's input, [C, H, W] float32, exactly as `classify` prepares them (pass the model's
 * `info.preprocess`): what to give `classify` or `embed` as a Float32Array, e.g. after preparing it elsewhere.
 */
export function preprocess(image: Pixels, spec: PreprocessSpec): Float32Array {
  return pipeline(asPixels(image, Number.MAX_SAFE_INTEGER)?.pixels ?? fail('BAD_IMAGE', 'preprocess: expected pixels ({ width, height, channels?, data })'), spec);
}

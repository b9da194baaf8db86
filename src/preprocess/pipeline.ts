/**
 * The evaluation transform the models were scored with, reproduced exactly: PIL `convert('L')` for greyscale
 * models, torchvision 0.14 `Resize(int)`, `CenterCrop`, `ToTensor`, `Normalize`. Host-independent: every host
 * decodes to a RawImage (PIL `convert('RGB')` bytes) and calls `preprocess`.
 */
import { fail } from '../errors.js';
import { pilResize } from './pil-resize.js';
import type { RawImage } from './raw-image.js';

export type { RawImage } from './raw-image.js';

export interface PreprocessSpec {
  resize: number;          // shorter side after Resize
  crop: number;            // CenterCrop side
  interpolation: 'bicubic' | 'bilinear';
  mean: number[];          // per channel, on the 0..1 scale
  std: number[];
  channels: 1 | 3;         // 1: the image is converted to PIL mode L first
}

/**
 * Vim's evaluation pipeline, hustvl/Vim `build_transform(is_train=False)` (MODEL.md §4): resize the shorter side to
 * int(size / 0.875), bicubic, center-crop the model's input size (224 -> 256 -> 224), ImageNet statistics;
 * greyscale models get the channel-averaged statistics.
 */
export function vimEvalSpec(channels: number, imageSize: number): PreprocessSpec {
  const sizes = { resize: Math.floor(imageSize / 0.875), crop: imageSize, interpolation: 'bicubic' as const };
  return channels === 1
    ? { ...sizes, mean: [0.449], std: [0.226], channels: 1 }
    : { ...sizes, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channels: 3 };
}

/** The pipeline of Vim's ImageNet models: Resize(256) bicubic, CenterCrop(224), ImageNet statistics. */
export const VIM_IMAGENET_SPEC: Readonly<PreprocessSpec> = Object.freeze(vimEvalSpec(3, 224));

/** torchvision `Resize(int)`: shorter side to `size`, longer side scaled and truncated (Python `int()`). */
export function resizedSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/**
 * Offset of a centred crop along one axis, as torchvision's CenterCrop computes it: Python's `round` (half to
 * even) of (size - crop) / 2, e.g. 341 -> 58, not 59. Negative when the image is smaller than the crop:
 * torchvision then pads with zeros, floor((crop - size) / 2) before.
 */
export function cropOffset(size: number, crop: number): number {
  if (size < crop) return -Math.floor((crop - size) / 2);
  const diff = size - crop;
  const low = Math.floor(diff / 2);
  if (diff % 2 === 0) return low;
  return low % 2 === 0 ? low : low + 1;
}

/** PIL `convert('L')` of an RGB image: ITU-R 601-2 luma in 16-bit fixed point, rounded (Pillow's L24 macro). */
export function toGreyscale(image: RawImage): RawImage {
  if (image.channels === 1) return image;
  const n = image.width * image.height;
  const src = image.data;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = (src[3 * i] * 19595 + src[3 * i + 1] * 38470 + src[3 * i + 2] * 7471 + 0x8000) >> 16;
  }
  return { width: image.width, height: image.height, channels: 1, data: out };
}

/** PIL `convert('RGB')` of a greyscale image: the value replicated. */
function toRgb(image: RawImage): RawImage {
  if (image.channels === 3) return image;
  const n = image.width * image.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = image.data[i];
  return { width: image.width, height: image.height, channels: 3, data: out };
}

/** `part` (the pixels of the resized image the crop keeps) placed at (x, y) of a zero-padded crop. */
function placeInCrop(part: RawImage, x: number, y: number, crop: number): RawImage {
  const ch = part.channels;
  const out = new Uint8Array(crop * crop * ch); // zeros: torchvision's padding fill
  for (let r = 0; r < part.height; r++) {
    out.set(part.data.subarray(r * part.width * ch, (r + 1) * part.width * ch), ((y + r) * crop + x) * ch);
  }
  return { width: crop, height: crop, channels: ch, data: out };
}

function checkImage(image: RawImage): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    fail('BAD_IMAGE', `image size ${width}x${height} is not a positive integer size`);
  }
  if (channels !== 1 && channels !== 3) fail('BAD_IMAGE', `image has ${channels} channels, expected 1 or 3`);
  if (data.length !== width * height * channels) {
    fail('BAD_IMAGE', `image data has ${data.length} bytes, expected ${width}x${height}x${channels}`);
  }
}

function checkSpec(spec: PreprocessSpec): void {
  for (const key of ['resize', 'crop'] as const) {
    if (!Number.isInteger(spec[key]) || spec[key] < 1) {
      fail('BAD_ARGUMENT', `preprocess ${key} must be a positive integer, got ${spec[key]}`);
    }
  }
  if (spec.channels !== 1 && spec.channels !== 3) {
    fail('BAD_ARGUMENT', `preprocess channels must be 1 or 3, got ${spec.channels}`);
  }
  if (spec.interpolation !== 'bicubic' && spec.interpolation !== 'bilinear') {
    fail('BAD_ARGUMENT', `preprocess interpolation must be bicubic or bilinear, got ${spec.interpolation}`);
  }
  if (spec.mean.length !== spec.channels || spec.std.length !== spec.channels) {
    fail('BAD_ARGUMENT', `preprocess mean and std need ${spec.channels} values each`);
  }
  if (spec.std.some((s) => !(s > 0))) fail('BAD_ARGUMENT', 'preprocess std values must be > 0');
}

/** Colour conversion, Resize and CenterCrop: the crop x crop uint8 image (HWC) that ToTensor receives. */
export function resizeAndCrop(image: RawImage, spec: PreprocessSpec): RawImage {
  checkImage(image);
  checkSpec(spec);
  const converted = spec.channels === 1 ? toGreyscale(image) : toRgb(image);
  const size = resizedSize(converted.width, converted.height, spec.resize);
  // CenterCrop keeps the rectangle [left, left + crop) x [top, top + crop) of the resized image (padding
  // where the image is smaller): only that part is resized, so memory and time are bounded by the crop and
  // the input, whatever the aspect ratio. torchvision skips Resize at the target size; pilResize copies then.
  const left = cropOffset(size.width, spec.crop);
  const top = cropOffset(size.height, spec.crop);
  const x0 = Math.max(0, left), y0 = Math.max(0, top);
  const x1 = Math.min(size.width, left + spec.crop), y1 = Math.min(size.height, top + spec.crop);
  const part = pilResize(converted, size.width, size.height, spec.interpolation, { x: x0, y: y0, width: x1 - x0, height: y1 - y0 });
  return placeInCrop(part, x0 - left, y0 - top, spec.crop);
}

/**
 * ToTensor + Normalize on the crop: CHW float32, `(p / 255 - mean) / std` with every step rounded to float32
 * as torch does, so the values are torchvision's bit for bit. A 256-entry table per channel does it.
 */
export function normalize(crop: RawImage, spec: PreprocessSpec): Float32Array {
  checkImage(crop);
  checkSpec(spec);
  if (crop.channels !== spec.channels) {
    fail('BAD_ARGUMENT', `crop has ${crop.channels} channels, the spec ${spec.channels}`);
  }
  const ch = crop.channels;
  const n = crop.width * crop.height;
  const out = new Float32Array(n * ch);
  const table = new Float32Array(256);
  for (let c = 0; c < ch; c++) {
    const mean = Math.fround(spec.mean[c]);
    const std = Math.fround(spec.std[c]);
    for (let p = 0; p < 256; p++) table[p] = Math.fround(Math.fround(p / 255) - mean) / std;
    const plane = out.subarray(c * n, (c + 1) * n);
    for (let i = 0; i < n; i++) plane[i] = table[crop.data[i * ch + c]];
  }
  return out;
}

/** The model input for one decoded image: `spec.channels` x crop x crop float32, CHW. */
export function preprocess(image: RawImage, spec: PreprocessSpec = VIM_IMAGENET_SPEC): Float32Array {
  return normalize(resizeAndCrop(image, spec), spec);
}

/**
 * Pillow's `Image.resize` for 8-bit images (BICUBIC and BILINEAR), reproduced byte for byte.
 *
 * Why not sharp's (libvips) resize: same Catmull-Rom kernel, but other fixed point, rounding and sample
 * alignment. Measured on the test fixtures (Resize 256 + CenterCrop 224): mean |diff| about 0.2 levels
 * (max 6) when shrinking, 3 to 7 levels (max over 100) when enlarging; the model was evaluated on PIL's
 * bytes. Pure TypeScript, no host APIs, so browsers, Deno and workerd run the same code.
 *
 * Pillow (src/libImaging/Resample.c) resamples in two separable passes, horizontal then vertical, each
 * rounding and clipping to uint8. A pass is skipped when its dimension is unchanged, and the horizontal
 * pass only produces the rows the vertical pass reads. Weights are computed in double, normalised to sum 1,
 * then turned into fixed point with 22 fractional bits; sums start at one half (1 << 21).
 */

import { fail } from '../errors.js';
import type { RawImage } from './raw-image.js';

export type ResampleFilter = 'bicubic' | 'bilinear';

// Pillow: 32-bit accumulator, 8 bits of pixel value, 2 bits of headroom for kernels that overshoot.
const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1); // accumulators start here so that >> rounds to nearest

interface Kernel {
  support: number;
  weight: (x: number) => number;
}

// Keys' cubic convolution with a = -0.5, written with Pillow's operation order so doubles round alike.
const A = -0.5;
const KERNELS: Record<ResampleFilter, Kernel> = {
  bicubic: {
    support: 2,
    weight(x) {
      if (x < 0) x = -x;
      if (x < 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * A;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    weight(x) {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
};

/** For each output index i: taps start at `first[i]`, `count[i]` of them, weights at `weights[i * taps]`. */
interface Coefficients {
  taps: number;
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array;
}

/** Coefficients of output indices [start, start + length) of a resize from inSize to outSize. */
function coefficients(inSize: number, outSize: number, kernel: Kernel, start = 0, length = outSize): Coefficients {
  const scale = inSize / outSize;
  // Downscaling widens the kernel by the scale factor (antialiasing); upscaling keeps it at its own support.
  const filterScale = Math.max(scale, 1);
  const support = kernel.support * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const invScale = 1 / filterScale;
  const first = new Int32Array(length);
  const count = new Int32Array(length);
  const weights = new Int32Array(length * taps);
  const w = new Float64Array(taps);
  for (let i = 0; i < length; i++) {
    const center = (start + i + 0.5) * scale;
    // C's (int) truncation, then clamped to the image.
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const n = hi - lo;
    let sum = 0;
    for (let t = 0; t < n; t++) {
      w[t] = kernel.weight((t + lo - center + 0.5) * invScale);
      sum += w[t];
    }
    for (let t = 0; t < n; t++) {
      const v = sum !== 0 ? w[t] / sum : w[t];
      // Round half away from zero, as Pillow's normalize_coeffs_8bpc does.
      weights[i * taps + t] = Math.trunc(v < 0 ? v * (1 << PRECISION_BITS) - 0.5 : v * (1 << PRECISION_BITS) + 0.5);
    }
    first[i] = lo;
    count[i] = n;
  }
  return { taps, first, count, weights };
}

// Products and sums stay below 2^31 (that is what the 2 headroom bits are for), so doubles hold them exactly.
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Horizontal pass over source rows [rowStart, rowStart + rows). */
function resampleRows(src: RawImage, rowStart: number, rows: number, outWidth: number, c: Coefficients): RawImage {
  const ch = src.channels;
  const data = src.data;
  const out = new Uint8Array(outWidth * rows * ch);
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + rowStart) * src.width * ch;
    let o = y * outWidth * ch;
    for (let x = 0; x < outWidth; x++) {
      const k0 = x * c.taps;
      const n = c.count[x];
      let p = rowIn + c.first[x] * ch;
      if (ch === 3) {
        // All three channels in one walk over the taps: ~3x faster than a loop per channel.
        let r = HALF, g = HALF, b = HALF;
        for (let t = 0; t < n; t++, p += 3) {
          const k = c.weights[k0 + t];
          r += data[p] * k;
          g += data[p + 1] * k;
          b += data[p + 2] * k;
        }
        out[o++] = clip8(r);
        out[o++] = clip8(g);
        out[o++] = clip8(b);
      } else {
        let v = HALF;
        for (let t = 0; t < n; t++) v += data[p + t] * c.weights[k0 + t];
        out[o++] = clip8(v);
      }
    }
  }
  return { width: outWidth, height: rows, channels: ch, data: out };
}

/** Vertical pass; `rowOffset` is the first source row that `src` holds. */
function resampleColumns(src: RawImage, rowOffset: number, outHeight: number, c: Coefficients): RawImage {
  const ch = src.channels;
  const stride = src.width * ch;
  const out = new Uint8Array(stride * outHeight);
  for (let y = 0; y < outHeight; y++) {
    const k0 = y * c.taps;
    const n = c.count[y];
    const r0 = (c.first[y] - rowOffset) * stride;
    const rowOut = y * stride;
    for (let i = 0; i < stride; i++) {
      let acc = HALF;
      for (let t = 0; t < n; t++) acc += src.data[r0 + t * stride + i] * c.weights[k0 + t];
      out[rowOut + i] = clip8(acc);
    }
  }
  return { width: src.width, height: outHeight, channels: ch, data: out };
}

/** Columns [x, x + width) of rows [y, y + height) of an image, copied. */
function subImage(image: RawImage, x: number, y: number, width: number, height: number): RawImage {
  const ch = image.channels;
  if (x === 0 && width === image.width) {
    return { width, height, channels: ch, data: image.data.slice(y * width * ch, (y + height) * width * ch) };
  }
  const out = new Uint8Array(width * height * ch);
  for (let r = 0; r < height; r++) {
    const from = ((y + r) * image.width + x) * ch;
    out.set(image.data.subarray(from, from + width * ch), r * width * ch);
  }
  return { width, height, channels: ch, data: out };
}

/** A rectangle of the output of a resize: only those pixels are computed. */
export interface ResizeRegion {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * `Image.resize((width, height), filter)` of Pillow 9.4 for modes L and RGB (no box, no reducing_gap).
 * With `region`, only that rectangle of the output is computed: every output pixel depends on its own
 * coefficients only, so the bytes are those of the full resize, but the memory and time are the region's
 * (a 1x100000 image resized to a shorter side of 256 is 256x25600000 pixels, of which a crop keeps 224x224).
 */
export function pilResize(image: RawImage, width: number, height: number, filter: ResampleFilter,
                          region: ResizeRegion = { x: 0, y: 0, width, height }): RawImage {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    fail('BAD_ARGUMENT', `resize target ${width}x${height} is not a positive integer size`);
  }
  const { x, y, width: w, height: h } = region;
  if (![x, y, w, h].every(Number.isSafeInteger) || x < 0 || y < 0 || w < 1 || h < 1 || x + w > width || y + h > height) {
    fail('BAD_ARGUMENT', `resize region ${w}x${h} at (${x}, ${y}) is not inside ${width}x${height}`);
  }
  if (width === image.width && height === image.height) return subImage(image, x, y, w, h);
  const kernel = KERNELS[filter];
  // Source rows the output rows [y, y + h) read: all of them when the height is unchanged.
  const vertical = height !== image.height ? coefficients(image.height, height, kernel, y, h) : undefined;
  const firstRow = vertical ? vertical.first[0] : y;
  const lastRow = vertical ? vertical.first[h - 1] + vertical.count[h - 1] : y + h;
  const current = width !== image.width
    ? resampleRows(image, firstRow, lastRow - firstRow, w, coefficients(image.width, width, kernel, x, w))
    : subImage(image, x, firstRow, w, lastRow - firstRow);
  return vertical ? resampleColumns(current, firstRow, h, vertical) : current;
}

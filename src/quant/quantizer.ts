/**
 * The uniform affine quantizer (QUANT-METHODS.md §2) and its range estimators.
 *   q = clamp(round(x / scale) + zero, qmin, qmax),   x̂ = scale · (q − zero),   round = half to even
 * Weights are symmetric with the narrow range ±(2^(b−1) − 1) (no zero point, so the GEMM needs no weight
 * correction). Activations are stored as signed int8 with the full range −2^(b−1)..2^(b−1) − 1: an
 * asymmetric range [lo, hi] gets a zero point (the spec's 0..255 codes shifted by −128), a symmetric one
 * zero = 0.
 */
import { fail } from '../errors.js';

/** Round half to even, as PyTorch's round and WebAssembly's f32.nearest (Math.round rounds half up). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface Affine {
  scale: number;   // a float32 value
  zero: number;
  qmin: number;
  qmax: number;
}

/** Largest code of a symmetric b-bit quantizer: 127, 31, 7. */
export const symmetricMax = (bits: number): number => 2 ** (bits - 1) - 1;

/** Symmetric weight quantizer for the clipping bound alpha (scale alpha / qmax; alpha 0 gives scale 1). */
export function weightQuantizer(alpha: number, bits: number): Affine {
  const qmax = symmetricMax(bits);
  return { scale: alpha > 0 ? Math.fround(alpha / qmax) : 1, zero: 0, qmin: -qmax, qmax };
}

/**
 * Activation quantizer for the clipping range [lo, hi], extended to contain 0 (zero must be a code).
 * Symmetric: zero = 0 and scale = max(|lo|, |hi|) / (2^(b−1) − 1), as after a rotation.
 */
export function activationQuantizer(lo: number, hi: number, bits: number, symmetric: boolean): Affine {
  if (!(lo <= hi)) fail('BAD_ARGUMENT', `activation range [${lo}, ${hi}] is empty`);
  const qmin = -(2 ** (bits - 1)), qmax = 2 ** (bits - 1) - 1;
  lo = Math.min(lo, 0);
  hi = Math.max(hi, 0);
  if (symmetric) {
    const alpha = Math.max(-lo, hi);
    return { scale: alpha > 0 ? Math.fround(alpha / qmax) : 1, zero: 0, qmin, qmax };
  }
  const scale = hi > lo ? Math.fround((hi - lo) / (qmax - qmin)) : 1;
  return { scale, zero: Math.min(qmax, Math.max(qmin, qmin - roundHalfEven(lo / scale))), qmin, qmax };
}

/** The integer code of x. */
export function quantize(x: number, a: Affine): number {
  return Math.min(a.qmax, Math.max(a.qmin, roundHalfEven(x / a.scale) + a.zero));
}

/** x through the quantizer and back: what the integer path computes with, in float. */
export function fakeQuantize(x: number, a: Affine): number {
  return a.scale * (quantize(x, a) - a.zero);
}

/** The p of the Lp range searches, weights and activations alike (PTQ4VM). */
export const LP_POWER = 2.4;

/** Sum of |x − x̂|^p over values (each counted `weights[i]` times when given), for the Lp range searches. */
export function lpError(values: ArrayLike<number>, a: Affine, p: number, weights?: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < values.length; i++) {
    const d = Math.abs(values[i] - fakeQuantize(values[i], a)) ** p;
    e += weights ? weights[i] * d : d;
  }
  return e;
}

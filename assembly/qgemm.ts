// What the integer GEMMs share (gemm_qs8_4x4_dot16.ts, gemm_qs4.ts and its two kernels): the contract of the
// quantized Linear layers (docs/FORMAT.md, layouts q8 and q4g64), their K padding and the steps every tile
// repeats (activation loads, the int16 dot, the float epilogue).
//   acc[t, j] = sum_k qx[t, k] * qw[j, k]                        int8 x int8 -> int32, exact
//   y[t, j]   = (f32(acc[t, j] - zx[t] * wsum[j]) * sw[j]) * sx[t] + bias[j]
// qx: int8 activations [M, kp] (row stride ldq bytes, zero padded), with a scale sx[t] and zero point zx[t]
// per row (written by quantize_s8; a per-tensor quantizer repeats its pair on every row). qw: symmetric
// weights with a scale per output (q8) or per output and group of 64 inputs (q4g64), wsum = sum_k qw[j, k]
// (per group for q4g64), so that the zero point costs one multiply-add per output instead of a pass over K.
// The int32 sums are exact (|acc| <= 1536 * 128 * 127 < 2^31 for every K in Vim), so any summation order
// gives the same integers; the float epilogue is evaluated in exactly the order written above, lane by lane.
//
// Packing (both layouts): outputs in panels of 4; inside a panel, 16-byte blocks run along K.
//   q8:    block q holds qw[4p + r, 4q + i] at byte 4r + i                       (k padded to 16)
//   q4g64: block c holds qw[4p + r, 8c + i] in the low nibble and qw[4p + r, 8c + 4 + i] in the high
//          nibble of byte 4r + i (two's complement)                                (k padded to 64)
// so one int4 block unpacks (XOR, AND, 16-bit shift: see gemm_qs4.ts) into two blocks of 4 x 4 codes.
// Panels are the outer loop of every kernel, so a caller splits the work over threads by handing each a
// range of panels (or of rows).

/** K of a q8 weight is padded to a multiple of this. */
const Q8_KALIGN = 16;
/** Inputs per int4 scale group (K padding of q4g64). */
export const Q4_GROUP = 64;

export function q8_k_padded(k: i32): i32 {
  return (k + Q8_KALIGN - 1) & ~(Q8_KALIGN - 1);
}

export function q4_k_padded(k: i32): i32 {
  return (k + Q4_GROUP - 1) & ~(Q4_GROUP - 1);
}

/** Four int8 activations at p, sign-extended and repeated: [x0, x1, x2, x3, x0, x1, x2, x3] as i16. */
// @ts-ignore: decorator
@inline
export function load_x4(p: usize): v128 {
  return i16x8.extend_low_i8x16_s(v128.load32_splat(p));
}

/** acc + the pair sums of one extended half-block (2 outputs x 4 inputs) with 4 activations. */
// @ts-ignore: decorator
@inline
export function dot(acc: v128, w16: v128, x4: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(w16, x4));
}

/** The two partial-sum vectors of a row folded into its 4 outputs' sums [n0, n1, n2, n3]. */
// @ts-ignore: decorator
@inline
export function fold_pairs(lo: v128, hi: v128): v128 {
  return i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7));
}

/** f32(acc - zx * wsum) * sw for the 4 outputs of a panel (one q8 layer or one q4 group). */
// @ts-ignore: decorator
@inline
export function dequantize(acc: v128, zeroX: i32, wsum4: v128, sw4: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(acc, i32x4.mul(i32x4.splat(zeroX), wsum4))), sw4);
}

/** Row t's 4 outputs at column j: y * sx[t] (+ bias), stored whole or, at the last panel, lane by lane. */
// @ts-ignore: decorator
@inline
export function store_row(c: usize, ldc: i32, t: i32, j: i32, n: i32, y: v128, sx: usize, bias: usize): void {
  let v = f32x4.mul(y, f32x4.splat(load<f32>(sx + (<usize>t << 2))));
  if (bias) v = f32x4.add(v, v128.load(bias + (<usize>j << 2)));
  const at = c + ((<usize>t * <usize>ldc + <usize>j) << 2);
  if (j + 4 <= n) {
    v128.store(at, v);
    return;
  }
  store<f32>(at, f32x4.extract_lane(v, 0));
  if (j + 1 < n) store<f32>(at, f32x4.extract_lane(v, 1), 4);
  if (j + 2 < n) store<f32>(at, f32x4.extract_lane(v, 2), 8);
}

/** zx[t]: row t's zero point. */
// @ts-ignore: decorator
@inline
export function zero_at(zx: usize, t: i32): i32 {
  return load<i32>(zx + (<usize>t << 2));
}

/** Entries [j..j+3, g] of an [N, G] table (4-byte elements) as one vector; rows past n - 1 repeat it. */
// @ts-ignore: decorator
@inline
export function column4(table: usize, j: i32, n: i32, g: i32, groups: i32): v128 {
  let v = v128.load32_zero(entry(table, j, g, groups));
  v = v128.load32_lane(entry(table, min(j + 1, n - 1), g, groups), v, 1);
  v = v128.load32_lane(entry(table, min(j + 2, n - 1), g, groups), v, 2);
  return v128.load32_lane(entry(table, min(j + 3, n - 1), g, groups), v, 3);
}

// @ts-ignore: decorator
@inline
function entry(table: usize, row: i32, g: i32, groups: i32): usize {
  return table + ((<usize>row * <usize>groups + <usize>g) << 2);
}

/**
 * acc - 8 * (row t's activation sum over group g): the int4 kernels multiply offset codes (code + 8, see
 * gemm_qs4.ts); this takes their sums back to the codes' sums.
 */
// @ts-ignore: decorator
@inline
export function unoffset(acc: v128, sums: usize, t: i32, g: i32, groups: i32): v128 {
  return i32x4.sub(acc, i32x4.splat(load<i32>(sums + ((<usize>t * <usize>groups + <usize>g) << 2)) << 3));
}

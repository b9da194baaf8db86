// Integer matrix products of the quantized Linear layers (docs/FORMAT.md, layouts q8 and q4g64):
//   acc[t, j] = sum_k qx[t, k] * qw[j, k]                        int8 x int8 -> int32, exact
//   y[t, j]   = (f32(acc[t, j] - zx[t] * wsum[j]) * sw[j]) * sx[t] + bias[j]
// qx: int8 activations [M, kp] (row stride ldq bytes, zero padded), with a scale sx[t] and zero point zx[t]
// per row (written by quantize_s8; a per-tensor quantizer repeats its pair on every row). qw: symmetric
// weights with a scale per output (q8) or per output and group of 64 inputs (q4g64), wsum = sum_k qw[j, k]
// (per group for q4g64), so that the zero point costs one multiply-add per output instead of a pass over K.
// The int32 sums are exact (|acc| <= 1536 * 128 * 127 < 2^31 for every K in Vim), so any summation order
// gives the same integers; the float epilogue is evaluated in exactly the order written above.
//
// Packing (both layouts): outputs in panels of 4; inside a panel, 16-byte blocks run along K.
//   q8:    block q holds qw[4p + r, 4q + i] at byte 4r + i                       (k padded to 16)
//   q4g64: block c holds qw[4p + r, 8c + i] in the low nibble and qw[4p + r, 8c + 4 + i] in the high
//          nibble of byte 4r + i (two's complement)                                (k padded to 64)
// so one int4 block unpacks (shl 4 + shr_s 4, shr_s 4) into two int8 blocks, and an int8 block is what both
// the portable i32x4.dot_i16x8_s path (below) and a relaxed i8 dot (4 consecutive k per lane) consume.
// This is the plain, correct path: one output panel and one row at a time, no register blocking.

/** K of a q8 weight is padded to a multiple of this. */
const Q8_KALIGN = 16;
/** Inputs per int4 scale group (K padding of q4g64). */
const Q4_GROUP = 64;

/** Inputs of a q8 weight with k inputs, padded to whole 16-input steps. */
function q8_k_padded(k: i32): i32 {
  return (k + Q8_KALIGN - 1) & ~(Q8_KALIGN - 1);
}

/** Inputs of a q4g64 weight with k inputs, padded to whole groups. */
function q4_k_padded(k: i32): i32 {
  return (k + Q4_GROUP - 1) & ~(Q4_GROUP - 1);
}

/**
 * One 16-byte int8 block (4 outputs x 4 inputs) times 4 activations, added to the two partial sums:
 * lo lanes = [n0 k0+k1, n0 k2+k3, n1 k0+k1, n1 k2+k3], hi lanes the same for n2, n3.
 */
// @ts-ignore: decorator
@inline
function dot_block(w: v128, x4: v128, acc: v128, high: bool): v128 {
  const w16 = high ? i16x8.extend_high_i8x16_s(w) : i16x8.extend_low_i8x16_s(w);
  return i32x4.add(acc, i32x4.dot_i16x8_s(w16, x4));
}

/** Four int8 activations at p, sign-extended and repeated: [x0, x1, x2, x3, x0, x1, x2, x3] as i16. */
// @ts-ignore: decorator
@inline
function load_x4(p: usize): v128 {
  return i16x8.extend_low_i8x16_s(v128.load32_splat(p));
}

/** The two partial-sum vectors of dot_block folded into the 4 outputs' sums [n0, n1, n2, n3]. */
// @ts-ignore: decorator
@inline
function fold_pairs(lo: v128, hi: v128): v128 {
  return i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7));
}

// @ts-ignore: decorator
@inline
function lane_i32(v: v128, r: i32): i32 {
  if (r == 0) return i32x4.extract_lane(v, 0);
  if (r == 1) return i32x4.extract_lane(v, 1);
  if (r == 2) return i32x4.extract_lane(v, 2);
  return i32x4.extract_lane(v, 3);
}

/**
 * C[M, N] (row stride ldc floats) = dequantized (qx[M, k] x q8 weight [N, k]^T) + bias (0 = none).
 * sw, wsum: [N]; sx, zx: [M].
 */
export function gemm_s8(qx: usize, ldq: i32, m: i32, k: i32, w: usize, n: i32, sw: usize, wsum: usize,
                        sx: usize, zx: usize, bias: usize, c: usize, ldc: i32): void {
  const kp = q8_k_padded(k);
  const panelBytes = <usize>kp << 2;
  for (let t = 0; t < m; t++) {
    const xr = qx + <usize>t * <usize>ldq;
    const cr = c + ((<usize>t * <usize>ldc) << 2);
    const scaleX = load<f32>(sx + (<usize>t << 2));
    const zeroX = load<i32>(zx + (<usize>t << 2));
    for (let p = 0; p < n; p += 4) {
      const wp = w + (<usize>(p >> 2)) * panelBytes;
      let lo = i32x4.splat(0), hi = i32x4.splat(0);
      for (let kk = 0; kk < kp; kk += 4) {
        const wv = v128.load(wp + (<usize>kk << 2));    // block kk / 4: 16 bytes
        const x4 = load_x4(xr + <usize>kk);
        lo = dot_block(wv, x4, lo, false);
        hi = dot_block(wv, x4, hi, true);
      }
      const acc = fold_pairs(lo, hi);
      for (let r = 0; r < 4 && p + r < n; r++) {
        const j = <usize>(p + r);
        const exact = lane_i32(acc, r) - zeroX * load<i32>(wsum + (j << 2));
        let y = (<f32>exact * load<f32>(sw + (j << 2))) * scaleX;
        if (bias) y += load<f32>(bias + (j << 2));
        store<f32>(cr + (j << 2), y);
      }
    }
  }
}

/**
 * As gemm_s8 for a q4g64 weight: sw, wsum are [N, G] with G = q4_k_padded(k) / 64, and the epilogue sums
 * the groups in order: y = (sum_g f32(acc_g - zx * wsum[j, g]) * sw[j, g]) * sx[t] + bias[j].
 */
export function gemm_s4(qx: usize, ldq: i32, m: i32, k: i32, w: usize, n: i32, sw: usize, wsum: usize,
                        sx: usize, zx: usize, bias: usize, c: usize, ldc: i32): void {
  const kp = q4_k_padded(k);
  const groups = kp / Q4_GROUP;
  const panelBytes = <usize>kp << 1;
  for (let t = 0; t < m; t++) {
    const xr = qx + <usize>t * <usize>ldq;
    const cr = c + ((<usize>t * <usize>ldc) << 2);
    const scaleX = load<f32>(sx + (<usize>t << 2));
    const zeroX = load<i32>(zx + (<usize>t << 2));
    for (let p = 0; p < n; p += 4) {
      const wp = w + (<usize>(p >> 2)) * panelBytes;
      const rows = min(4, n - p);
      let y0: f32 = 0, y1: f32 = 0, y2: f32 = 0, y3: f32 = 0;
      for (let g = 0; g < groups; g++) {
        let lo = i32x4.splat(0), hi = i32x4.splat(0);
        const k0 = g * Q4_GROUP;
        for (let kk = k0; kk < k0 + Q4_GROUP; kk += 8) {
          const packed = v128.load(wp + (<usize>kk << 1));   // block kk / 8: 16 bytes
          const first = i8x16.shr_s(i8x16.shl(packed, 4), 4);   // inputs kk..kk+3
          const second = i8x16.shr_s(packed, 4);                  // inputs kk+4..kk+7
          const xa = load_x4(xr + <usize>kk);
          const xb = load_x4(xr + <usize>kk + 4);
          lo = dot_block(first, xa, lo, false);
          hi = dot_block(first, xa, hi, true);
          lo = dot_block(second, xb, lo, false);
          hi = dot_block(second, xb, hi, true);
        }
        const acc = fold_pairs(lo, hi);
        const at = (<usize>p * <usize>groups + <usize>g) << 2;   // element [p, g] of the [N, G] tables
        const step = <usize>groups << 2;
        y0 += <f32>(i32x4.extract_lane(acc, 0) - zeroX * load<i32>(wsum + at)) * load<f32>(sw + at);
        if (rows > 1) y1 += <f32>(i32x4.extract_lane(acc, 1) - zeroX * load<i32>(wsum + at + step)) * load<f32>(sw + at + step);
        if (rows > 2) y2 += <f32>(i32x4.extract_lane(acc, 2) - zeroX * load<i32>(wsum + at + 2 * step)) * load<f32>(sw + at + 2 * step);
        if (rows > 3) y3 += <f32>(i32x4.extract_lane(acc, 3) - zeroX * load<i32>(wsum + at + 3 * step)) * load<f32>(sw + at + 3 * step);
      }
      store_scaled(cr, p, y0 * scaleX, bias);
      if (rows > 1) store_scaled(cr, p + 1, y1 * scaleX, bias);
      if (rows > 2) store_scaled(cr, p + 2, y2 * scaleX, bias);
      if (rows > 3) store_scaled(cr, p + 3, y3 * scaleX, bias);
    }
  }
}

// @ts-ignore: decorator
@inline
function store_scaled(row: usize, j: i32, y: f32, bias: usize): void {
  const o = <usize>j << 2;
  store<f32>(row + o, bias ? y + load<f32>(bias + o) : y);
}

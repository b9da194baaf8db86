// Integer matrix products of the quantized Linear layers (docs/FORMAT.md, layouts q8 and q4g64):
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
// so one int4 block unpacks (XOR, AND, 16-bit shift: see gemm_s4) into two blocks of 4 x 4 codes.
//
// Register blocking (XNNPACK's 4x4c4 idea with the portable i32x4.dot_i16x8_s): a tile is 4 rows x one
// panel of 4 outputs. Each weight block is sign-extended once and multiplied with 4 rows' activations, kept
// in 8 accumulators (pairs of partial sums); the panel (<= 1.5 KB) stays in L1 while the rows stream past.
// Panels are the outer loop, so a caller splits the work over threads by handing each a range of panels.

/** K of a q8 weight is padded to a multiple of this. */
const Q8_KALIGN = 16;
/** Inputs per int4 scale group (K padding of q4g64). */
const Q4_GROUP = 64;

function q8_k_padded(k: i32): i32 {
  return (k + Q8_KALIGN - 1) & ~(Q8_KALIGN - 1);
}

function q4_k_padded(k: i32): i32 {
  return (k + Q4_GROUP - 1) & ~(Q4_GROUP - 1);
}

/** Four int8 activations at p, sign-extended and repeated: [x0, x1, x2, x3, x0, x1, x2, x3] as i16. */
// @ts-ignore: decorator
@inline
function load_x4(p: usize): v128 {
  return i16x8.extend_low_i8x16_s(v128.load32_splat(p));
}

/** acc + the pair sums of one extended half-block (2 outputs x 4 inputs) with 4 activations. */
// @ts-ignore: decorator
@inline
function dot(acc: v128, w16: v128, x4: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(w16, x4));
}

/** The two partial-sum vectors of a row folded into its 4 outputs' sums [n0, n1, n2, n3]. */
// @ts-ignore: decorator
@inline
function fold_pairs(lo: v128, hi: v128): v128 {
  return i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7));
}

/** f32(acc - zx * wsum) * sw for the 4 outputs of a panel (one q8 layer or one q4 group). */
// @ts-ignore: decorator
@inline
function dequantize(acc: v128, zeroX: i32, wsum4: v128, sw4: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(acc, i32x4.mul(i32x4.splat(zeroX), wsum4))), sw4);
}

/** Row t's 4 outputs at column j: y * sx[t] (+ bias), stored whole or, at the last panel, lane by lane. */
// @ts-ignore: decorator
@inline
function store_row(c: usize, ldc: i32, t: i32, j: i32, n: i32, y: v128, sx: usize, bias: usize): void {
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

// @ts-ignore: decorator
@inline
function zero_at(zx: usize, t: i32): i32 {
  return load<i32>(zx + (<usize>t << 2));
}

/**
 * C[M, N] (row stride ldc floats) = dequantized (qx[M, k] x q8 weight [N, k]^T) + bias (0 = none).
 * sw, wsum: [N]; sx, zx: [M]. Tables are read 4 outputs at a time (blobs are padded to 64 bytes).
 */
export function gemm_s8(qx: usize, ldq: i32, m: i32, k: i32, w: usize, n: i32, sw: usize, wsum: usize,
                        sx: usize, zx: usize, bias: usize, c: usize, ldc: i32): void {
  const kp = q8_k_padded(k);
  const panelBytes = <usize>kp << 2;
  const ld = <usize>ldq;
  for (let j = 0; j < n; j += 4) {
    const wp = w + <usize>(j >> 2) * panelBytes;
    const sw4 = v128.load(sw + (<usize>j << 2)), wsum4 = v128.load(wsum + (<usize>j << 2));
    let t = 0;
    for (; t + 4 <= m; t += 4) {
      const x0 = qx + <usize>t * ld;
      let a0 = i32x4.splat(0), b0 = i32x4.splat(0), a1 = i32x4.splat(0), b1 = i32x4.splat(0);
      let a2 = i32x4.splat(0), b2 = i32x4.splat(0), a3 = i32x4.splat(0), b3 = i32x4.splat(0);
      for (let kk = 0; kk < kp; kk += 4) {
        const wv = v128.load(wp + (<usize>kk << 2));
        const wl = i16x8.extend_low_i8x16_s(wv), wh = i16x8.extend_high_i8x16_s(wv);
        const p = x0 + <usize>kk;
        const y0 = load_x4(p), y1 = load_x4(p + ld), y2 = load_x4(p + 2 * ld), y3 = load_x4(p + 3 * ld);
        a0 = dot(a0, wl, y0); b0 = dot(b0, wh, y0);
        a1 = dot(a1, wl, y1); b1 = dot(b1, wh, y1);
        a2 = dot(a2, wl, y2); b2 = dot(b2, wh, y2);
        a3 = dot(a3, wl, y3); b3 = dot(b3, wh, y3);
      }
      store_row(c, ldc, t, j, n, dequantize(fold_pairs(a0, b0), zero_at(zx, t), wsum4, sw4), sx, bias);
      store_row(c, ldc, t + 1, j, n, dequantize(fold_pairs(a1, b1), zero_at(zx, t + 1), wsum4, sw4), sx, bias);
      store_row(c, ldc, t + 2, j, n, dequantize(fold_pairs(a2, b2), zero_at(zx, t + 2), wsum4, sw4), sx, bias);
      store_row(c, ldc, t + 3, j, n, dequantize(fold_pairs(a3, b3), zero_at(zx, t + 3), wsum4, sw4), sx, bias);
    }
    for (; t < m; t++) {
      const x0 = qx + <usize>t * ld;
      let a0 = i32x4.splat(0), b0 = i32x4.splat(0);
      for (let kk = 0; kk < kp; kk += 4) {
        const wv = v128.load(wp + (<usize>kk << 2));
        const y0 = load_x4(x0 + <usize>kk);
        a0 = dot(a0, i16x8.extend_low_i8x16_s(wv), y0);
        b0 = dot(b0, i16x8.extend_high_i8x16_s(wv), y0);
      }
      store_row(c, ldc, t, j, n, dequantize(fold_pairs(a0, b0), zero_at(zx, t), wsum4, sw4), sx, bias);
    }
  }
}

/** Entries [j..j+3, g] of an [N, G] table (4-byte elements) as one vector; rows past n - 1 repeat it. */
// @ts-ignore: decorator
@inline
function column4(table: usize, j: i32, n: i32, g: i32, groups: i32): v128 {
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
 * As gemm_s8 for a q4g64 weight: sw, wsum are [N, G] with G = q4_k_padded(k) / 64, and the epilogue sums
 * the groups in order: y = (sum_g f32(acc_g - zx * wsum[j, g]) * sw[j, g]) * sx[t] + bias[j].
 * Both builds unpack the codes as code + 8 (0..15: one XOR per block, then an AND or a 16-bit shift; x86 has
 * no 8-bit shifts, which V8 would emulate with several instructions) and take 8 * (the activations' sum over
 * the group) back off the exact int32 sums: sum x * w = sum x * (w + 8) - 8 * sum x. scratch: m * G i32 of
 * the caller's for those sums, computed once per call.
 * Portable build: tiles of 2 rows (16 integer and 2 float accumulators would not fit in 16 vector registers
 * at 4 rows); relaxed-SIMD build: gemm_s4_relaxed.
 */
export function gemm_s4(qx: usize, ldq: i32, m: i32, k: i32, w: usize, n: i32, sw: usize, wsum: usize,
                        sx: usize, zx: usize, bias: usize, c: usize, ldc: i32, scratch: usize): void {
  const kp = q4_k_padded(k);
  const groups = kp / Q4_GROUP;
  group_sums(qx, ldq, m, groups, scratch);
  if (ASC_FEATURE_RELAXED_SIMD) {
    gemm_s4_relaxed(qx, ldq, m, kp, w, n, sw, wsum, sx, zx, bias, c, ldc, scratch);
    return;
  }
  const panelBytes = <usize>kp << 1;
  const ld = <usize>ldq;
  const flip = i8x16.splat(-120);   // 0x88: each nibble's two's complement code -> code + 8
  const low = i8x16.splat(15);
  for (let j = 0; j < n; j += 4) {
    const wp = w + <usize>(j >> 2) * panelBytes;
    let t = 0;
    for (; t < m; t += 2) {
      const two = t + 1 < m;
      const x0 = qx + <usize>t * ld, x1 = two ? x0 + ld : x0;
      const z0 = zero_at(zx, t), z1 = two ? zero_at(zx, t + 1) : z0;
      let y0 = f32x4.splat(0), y1 = f32x4.splat(0);
      for (let g = 0; g < groups; g++) {
        let a0 = i32x4.splat(0), b0 = i32x4.splat(0), a1 = i32x4.splat(0), b1 = i32x4.splat(0);
        const k0 = g * Q4_GROUP;
        for (let kk = k0; kk < k0 + Q4_GROUP; kk += 8) {
          const u = v128.xor(v128.load(wp + (<usize>kk << 1)), flip);     // block kk / 8: 16 bytes
          const first = v128.and(u, low);                                 // inputs kk..kk+3, + 8
          const second = v128.and(i16x8.shr_u(u, 4), low);                 // inputs kk+4..kk+7, + 8
          const fl = i16x8.extend_low_i8x16_u(first), fh = i16x8.extend_high_i8x16_u(first);
          const sl = i16x8.extend_low_i8x16_u(second), sh = i16x8.extend_high_i8x16_u(second);
          const p0 = x0 + <usize>kk, p1 = x1 + <usize>kk;
          const u0 = load_x4(p0), v0 = load_x4(p0 + 4), u1 = load_x4(p1), v1 = load_x4(p1 + 4);
          a0 = dot(dot(a0, fl, u0), sl, v0); b0 = dot(dot(b0, fh, u0), sh, v0);
          a1 = dot(dot(a1, fl, u1), sl, v1); b1 = dot(dot(b1, fh, u1), sh, v1);
        }
        const sw4 = column4(sw, j, n, g, groups), wsum4 = column4(wsum, j, n, g, groups);
        y0 = f32x4.add(y0, dequantize(unoffset(fold_pairs(a0, b0), scratch, t, g, groups), z0, wsum4, sw4));
        if (two) y1 = f32x4.add(y1, dequantize(unoffset(fold_pairs(a1, b1), scratch, t + 1, g, groups), z1, wsum4, sw4));
      }
      store_row(c, ldc, t, j, n, y0, sx, bias);
      if (two) store_row(c, ldc, t + 1, j, n, y1, sx, bias);
    }
  }
}

/** scratch[t, g] = sum of row t's int8 activations over group g (64 inputs), for m rows. */
function group_sums(qx: usize, ldq: i32, m: i32, groups: i32, scratch: usize): void {
  for (let t = 0; t < m; t++) {
    for (let g = 0; g < groups; g++) {
      const p = qx + <usize>t * <usize>ldq + <usize>(g * Q4_GROUP);
      let s = i32x4.splat(0);
      for (let i = 0; i < Q4_GROUP; i += 16) {
        s = i32x4.add(s, i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(p + <usize>i))));
      }
      store<i32>(scratch + ((<usize>t * <usize>groups + <usize>g) << 2), i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) +
        i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3));
    }
  }
}

/**
 * gemm_s4 in the relaxed-SIMD build (assembly is compiled twice, build/vimedge.relaxed.wasm): the offset
 * codes (0..15) are the unsigned 7-bit operand of i32x4.relaxed_dot_i8x16_i7x16_add_s, the raw int8
 * activations the signed one, so every product is exact on every implementation of the instruction (x86's
 * pmaddubsw saturates only beyond 2 * 127 * 128). Each lane sums 4 products into one output: no extension,
 * no pair folding; tiles of 4 rows. The same int32 as the portable path, so the same floats follow.
 */
function gemm_s4_relaxed(qx: usize, ldq: i32, m: i32, kp: i32, w: usize, n: i32, sw: usize, wsum: usize,
                         sx: usize, zx: usize, bias: usize, c: usize, ldc: i32, sums: usize): void {
  const groups = kp / Q4_GROUP;
  const panelBytes = <usize>kp << 1;
  const ld = <usize>ldq;
  const flip = i8x16.splat(-120);
  const low = i8x16.splat(15);
  for (let j = 0; j < n; j += 4) {
    const wp = w + <usize>(j >> 2) * panelBytes;
    let t = 0;
    for (; t < m; t += 4) {
      const rows = min(4, m - t);
      // Rows past m repeat row t: computed, never stored.
      const x0 = qx + <usize>t * ld, x1 = rows > 1 ? x0 + ld : x0, x2 = rows > 2 ? x0 + 2 * ld : x0, x3 = rows > 3 ? x0 + 3 * ld : x0;
      let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
      for (let g = 0; g < groups; g++) {
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
        const k0 = g * Q4_GROUP;
        for (let kk = k0; kk < k0 + Q4_GROUP; kk += 8) {
          const u = v128.xor(v128.load(wp + (<usize>kk << 1)), flip);
          const first = v128.and(u, low), second = v128.and(i16x8.shr_u(u, 4), low);
          const o = <usize>kk;
          a0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x0 + o), first, a0);
          a0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x0 + o + 4), second, a0);
          a1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x1 + o), first, a1);
          a1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x1 + o + 4), second, a1);
          a2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x2 + o), first, a2);
          a2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x2 + o + 4), second, a2);
          a3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x3 + o), first, a3);
          a3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x3 + o + 4), second, a3);
        }
        const sw4 = column4(sw, j, n, g, groups), wsum4 = column4(wsum, j, n, g, groups);
        y0 = f32x4.add(y0, dequantize(unoffset(a0, sums, t, g, groups), zero_at(zx, t), wsum4, sw4));
        if (rows > 1) y1 = f32x4.add(y1, dequantize(unoffset(a1, sums, t + 1, g, groups), zero_at(zx, t + 1), wsum4, sw4));
        if (rows > 2) y2 = f32x4.add(y2, dequantize(unoffset(a2, sums, t + 2, g, groups), zero_at(zx, t + 2), wsum4, sw4));
        if (rows > 3) y3 = f32x4.add(y3, dequantize(unoffset(a3, sums, t + 3, g, groups), zero_at(zx, t + 3), wsum4, sw4));
      }
      store_row(c, ldc, t, j, n, y0, sx, bias);
      if (rows > 1) store_row(c, ldc, t + 1, j, n, y1, sx, bias);
      if (rows > 2) store_row(c, ldc, t + 2, j, n, y2, sx, bias);
      if (rows > 3) store_row(c, ldc, t + 3, j, n, y3, sx, bias);
    }
  }
}

/** acc - 8 * (row t's activation sum over group g): the offset codes' sums back to the codes' sums. */
// @ts-ignore: decorator
@inline
function unoffset(acc: v128, sums: usize, t: i32, g: i32, groups: i32): v128 {
  return i32x4.sub(acc, i32x4.splat(load<i32>(sums + ((<usize>t * <usize>groups + <usize>g) << 2)) << 3));
}

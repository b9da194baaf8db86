// int8 activations x int8 weights (layout q8) -> fp32: the quantized Linear of a W8 model (contract in
// qgemm.ts). Tile: 4 rows x one panel of 4 outputs, K in blocks of 4 (XNNPACK's 4x4c4), multiply-adds on the
// portable i32x4.dot_i16x8_s ("dot16": int8 widened to int16, pairs summed into int32). Each weight block is
// sign-extended once and multiplied with 4 rows' activations, kept in 8 accumulators (pairs of partial
// sums); the panel (<= 1.5 KB) stays in L1 while the rows stream past. The same code in both builds.

import { dequantize, dot, fold_pairs, load_x4, q8_k_padded, store_row, zero_at } from './qgemm';

/**
 * C[M, N] (row stride ldc floats) = dequantized (qx[M, k] x q8 weight [N, k]^T) + bias (0 = none).
 * sw, wsum: [N]; sx, zx: [M]. Tables are read 4 outputs at a time (blobs are padded to 64 bytes).
 */
export function gemm_qs8_4x4_dot16(qx: usize, ldq: i32, m: i32, k: i32, w: usize, n: i32, sw: usize, wsum: usize,
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

// gemm_qs4 in the relaxed-SIMD build (build/vimedge[.mt].relaxed.wasm): tiles of 4 rows x one panel of 4
// outputs, K in blocks of 8, multiply-adds on i32x4.relaxed_dot_i8x16_i7x16_add_s ("rdot8"). The offset
// codes (0..15) are its unsigned 7-bit operand, the raw int8 activations the signed one, so every product
// is exact on every implementation of the instruction (x86's pmaddubsw saturates only beyond
// 2 * 127 * 128). Each lane sums 4 products into one output: no extension, no pair folding.

import { Q4_GROUP, column4, dequantize, store_row, unoffset, zero_at } from './qgemm';

/** See gemm_qs4_4x4_dot16.ts (the same tile and loops on another multiply-add). */
export function gemm_qs4_4x4_rdot8(qx: usize, ldq: i32, m: i32, k: i32, kp: i32, w: usize, n: i32, sw: usize, wsum: usize,
                                   sx: usize, zx: usize, bias: usize, c: usize, ldc: i32, sums: usize): void {
  const groups = kp / Q4_GROUP;
  const kEnd = (k + 7) & ~7;
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
        const k0 = g * Q4_GROUP, k1 = min(k0 + Q4_GROUP, kEnd);
        for (let kk = k0; kk < k1; kk += 8) {
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

// gemm_qs4 in the portable build: tiles of 2 rows x one panel of 4 outputs, K in blocks of 8 (one 16-byte
// int4 block), multiply-adds on i32x4.dot_i16x8_s ("dot16": the offset codes and the activations widened
// to int16). 2 rows, not 4: at 4 rows the 16 integer and 2 float accumulators would not fit in the 16
// vector registers of x86-64 and arm64.

import { Q4_GROUP, column4, dequantize, dot, fold_pairs, load_x4, store_row, unoffset, zero_at } from './qgemm';

/** See gemm_qs4.ts; kp = q4_k_padded(k), sums: the activations' group sums [m, kp / 64]. */
export function gemm_qs4_2x4_dot16(qx: usize, ldq: i32, m: i32, kp: i32, w: usize, n: i32, sw: usize, wsum: usize,
                                   sx: usize, zx: usize, bias: usize, c: usize, ldc: i32, sums: usize): void {
  const groups = kp / Q4_GROUP;
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
        y0 = f32x4.add(y0, dequantize(unoffset(fold_pairs(a0, b0), sums, t, g, groups), z0, wsum4, sw4));
        if (two) y1 = f32x4.add(y1, dequantize(unoffset(fold_pairs(a1, b1), sums, t + 1, g, groups), z1, wsum4, sw4));
      }
      store_row(c, ldc, t, j, n, y0, sx, bias);
      if (two) store_row(c, ldc, t + 1, j, n, y1, sx, bias);
    }
  }
}

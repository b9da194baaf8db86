// gemm_qs4 in the portable build: each panel of 4 outputs is unpacked once into the caller's scratch as
// int16 codes (-8..7), in gemm_qs8_4x4_dot16's block order, with its scales and code sums per group as
// whole vectors; then tiles of 4 rows x that panel, K in blocks of 4, multiply-add on i32x4.dot_i16x8_s
// ("dot16") exactly as the int8 kernel does, less its two sign extensions a block, and like it the last
// m % 4 rows one at a time. The unpacking costs kp / 8 blocks a panel, shared by all m rows, so an int4
// weight costs about what an int8 one does per multiply-add. The sums are of the codes themselves: the
// activations' group sums are not needed here.

import { Q4_GROUP, column4, dequantize, dot, fold_pairs, load_x4, store_row, zero_at } from './qgemm';

/**
 * See gemm_qs4.ts; kp = q4_k_padded(k); panel: 8 * kp + 32 * G bytes of scratch. Blocks past k (rounded
 * up to 8) hold zero activations and are skipped: a K of 12 costs 2 blocks of 8, not 8.
 */
export function gemm_qs4_4x4_dot16(qx: usize, ldq: i32, m: i32, k: i32, kp: i32, w: usize, n: i32, sw: usize, wsum: usize,
                                   sx: usize, zx: usize, bias: usize, c: usize, ldc: i32, panel: usize): void {
  const groups = kp / Q4_GROUP;
  const kEnd = (k + 7) & ~7;
  const panelBytes = <usize>kp << 1;
  const ld = <usize>ldq;
  const flip = i8x16.splat(-120);   // 0x88: each nibble's two's complement code -> code + 8
  const low = i8x16.splat(15);
  const eight = i16x8.splat(8);
  const tables = panel + (<usize>kp << 3);   // [G] x (sw4, wsum4) of the panel
  for (let j = 0; j < n; j += 4) {
    unpack_panel(w + <usize>(j >> 2) * panelBytes, kEnd, panel, flip, low, eight);
    for (let g = 0; g < groups; g++) {
      v128.store(tables + (<usize>g << 5), column4(sw, j, n, g, groups));
      v128.store(tables + (<usize>g << 5), column4(wsum, j, n, g, groups), 16);
    }
    let t = 0;
    for (; t + 4 <= m; t += 4) {
      const x0 = qx + <usize>t * ld;
      let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
      for (let g = 0; g < groups; g++) {
        let a0 = i32x4.splat(0), b0 = i32x4.splat(0), a1 = i32x4.splat(0), b1 = i32x4.splat(0);
        let a2 = i32x4.splat(0), b2 = i32x4.splat(0), a3 = i32x4.splat(0), b3 = i32x4.splat(0);
        const k0 = g * Q4_GROUP, k1 = min(k0 + Q4_GROUP, kEnd);
        for (let kk = k0; kk < k1; kk += 4) {
          const wq = panel + (<usize>kk << 3);
          const wl = v128.load(wq), wh = v128.load(wq, 16);
          const p = x0 + <usize>kk;
          const u0 = load_x4(p), u1 = load_x4(p + ld), u2 = load_x4(p + 2 * ld), u3 = load_x4(p + 3 * ld);
          a0 = dot(a0, wl, u0); b0 = dot(b0, wh, u0);
          a1 = dot(a1, wl, u1); b1 = dot(b1, wh, u1);
          a2 = dot(a2, wl, u2); b2 = dot(b2, wh, u2);
          a3 = dot(a3, wl, u3); b3 = dot(b3, wh, u3);
        }
        const sw4 = v128.load(tables + (<usize>g << 5)), wsum4 = v128.load(tables + (<usize>g << 5), 16);
        y0 = f32x4.add(y0, dequantize(fold_pairs(a0, b0), zero_at(zx, t), wsum4, sw4));
        y1 = f32x4.add(y1, dequantize(fold_pairs(a1, b1), zero_at(zx, t + 1), wsum4, sw4));
        y2 = f32x4.add(y2, dequantize(fold_pairs(a2, b2), zero_at(zx, t + 2), wsum4, sw4));
        y3 = f32x4.add(y3, dequantize(fold_pairs(a3, b3), zero_at(zx, t + 3), wsum4, sw4));
      }
      store_row(c, ldc, t, j, n, y0, sx, bias);
      store_row(c, ldc, t + 1, j, n, y1, sx, bias);
      store_row(c, ldc, t + 2, j, n, y2, sx, bias);
      store_row(c, ldc, t + 3, j, n, y3, sx, bias);
    }
    for (; t < m; t++) {   // the last m % 4 rows, one at a time (as gemm_qs8_4x4_dot16)
      const x0 = qx + <usize>t * ld;
      let y0 = f32x4.splat(0);
      for (let g = 0; g < groups; g++) {
        let a0 = i32x4.splat(0), b0 = i32x4.splat(0);
        const k0 = g * Q4_GROUP, k1 = min(k0 + Q4_GROUP, kEnd);
        for (let kk = k0; kk < k1; kk += 4) {
          const wq = panel + (<usize>kk << 3);
          const u0 = load_x4(x0 + <usize>kk);
          a0 = dot(a0, v128.load(wq), u0); b0 = dot(b0, v128.load(wq, 16), u0);
        }
        const sw4 = v128.load(tables + (<usize>g << 5)), wsum4 = v128.load(tables + (<usize>g << 5), 16);
        y0 = f32x4.add(y0, dequantize(fold_pairs(a0, b0), zero_at(zx, t), wsum4, sw4));
      }
      store_row(c, ldc, t, j, n, y0, sx, bias);
    }
  }
}

/**
 * One panel's int4 blocks (8 inputs x 4 outputs, see qgemm.ts) up to kEnd as int16 codes: 32 bytes per 4
 * inputs, outputs 0-1 then 2-3, each output's 4 codes in input order (the int8 block, sign-extended).
 */
// @ts-ignore: decorator
@inline
function unpack_panel(wp: usize, kEnd: i32, panel: usize, flip: v128, low: v128, eight: v128): void {
  for (let kk = 0; kk < kEnd; kk += 8) {
    const u = v128.xor(v128.load(wp + (<usize>kk << 1)), flip);
    const first = v128.and(u, low), second = v128.and(i16x8.shr_u(u, 4), low);   // codes + 8, as in qgemm.ts
    const at = panel + (<usize>kk << 3);
    v128.store(at, i16x8.sub(i16x8.extend_low_i8x16_u(first), eight));
    v128.store(at, i16x8.sub(i16x8.extend_high_i8x16_u(first), eight), 16);
    v128.store(at, i16x8.sub(i16x8.extend_low_i8x16_u(second), eight), 32);
    v128.store(at, i16x8.sub(i16x8.extend_high_i8x16_u(second), eight), 48);
  }
}

// Measurement kernel for bench/: the int8 dot throughput one core reaches with the instruction mix of
// gemm_qs8_4x4_dot16's inner loop (load a 16-byte weight block from L1, sign-extend both halves, two
// i32x4.dot_i16x8_s per activation row, 4 rows) with nothing else in the way: no activation loads, no
// epilogue. The benchmark reports each GEMM's GMAC/s as a fraction of this.

/** Runs `blocks` weight blocks (read cyclically from 1 KB at w) x 4 rows; returns a checksum of the sums. */
export function int8_dot_peak(w: usize, blocks: i32): i32 {
  const x0 = i16x8.splat(3), x1 = i16x8.splat(-5), x2 = i16x8.splat(7), x3 = i16x8.splat(-11);
  let a0 = i32x4.splat(0), b0 = i32x4.splat(0), a1 = i32x4.splat(0), b1 = i32x4.splat(0);
  let a2 = i32x4.splat(0), b2 = i32x4.splat(0), a3 = i32x4.splat(0), b3 = i32x4.splat(0);
  for (let i = 0; i < blocks; i++) {
    const wv = v128.load(w + ((<usize>i & 63) << 4));
    const wl = i16x8.extend_low_i8x16_s(wv), wh = i16x8.extend_high_i8x16_s(wv);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(wl, x0)); b0 = i32x4.add(b0, i32x4.dot_i16x8_s(wh, x0));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(wl, x1)); b1 = i32x4.add(b1, i32x4.dot_i16x8_s(wh, x1));
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(wl, x2)); b2 = i32x4.add(b2, i32x4.dot_i16x8_s(wh, x2));
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(wl, x3)); b3 = i32x4.add(b3, i32x4.dot_i16x8_s(wh, x3));
  }
  const s = i32x4.add(i32x4.add(i32x4.add(a0, b0), i32x4.add(a1, b1)), i32x4.add(i32x4.add(a2, b2), i32x4.add(a3, b3)));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
}

// int8 activations x int4 weights (layout q4g64) -> fp32: the quantized Linear of a W4 model (contract in
// qgemm.ts), with sw, wsum [N, G] per output and group of 64 inputs, G = q4_k_padded(k) / 64, and the
// groups summed in order: y = (sum_g f32(acc_g - zx * wsum[j, g]) * sw[j, g]) * sx[t] + bias[j].
// Each build has its own kernel, chosen when the module is compiled (scripts/build-wasm.mjs), so the
// export keeps one name:
//   portable SIMD: gemm_qs4_4x4_dot16.ts     relaxed SIMD: gemm_qs4_4x4_rdot8.ts
// Both unpack the codes as code + 8 (0..15: one XOR per block, then an AND or a 16-bit shift; x86 has no
// 8-bit shifts, which V8 would emulate with several instructions). The portable kernel takes the 8 back
// off each code as it unpacks a panel to int16; the relaxed one multiplies the offset codes (its
// instruction wants them unsigned) and takes 8 * (the activations' sum over the group) back off the exact
// int32 sums: sum x * w = sum x * (w + 8) - 8 * sum x. Both give the same int32, so the same floats follow.

import { Q4_GROUP, q4_k_padded } from './qgemm';
import { gemm_qs4_4x4_dot16 } from './gemm_qs4_4x4_dot16';
import { gemm_qs4_4x4_rdot8 } from './gemm_qs4_4x4_rdot8';

/**
 * As gemm_qs8_4x4_dot16 for a q4g64 weight. scratch: max(8 * kp + 32 * G, 4 * m * G) bytes of the caller's (q4ScratchBytes, src/model/contract.ts): the
 * unpacked panel (portable) or the activations' group sums, computed once per call (relaxed).
 */
export function gemm_qs4(qx: usize, ldq: i32, m: i32, k: i32, w: usize, n: i32, sw: usize, wsum: usize,
                         sx: usize, zx: usize, bias: usize, c: usize, ldc: i32, scratch: usize): void {
  const kp = q4_k_padded(k);
  if (ASC_FEATURE_RELAXED_SIMD) {
    group_sums(qx, ldq, m, kp / Q4_GROUP, scratch);
    gemm_qs4_4x4_rdot8(qx, ldq, m, k, kp, w, n, sw, wsum, sx, zx, bias, c, ldc, scratch);
  } else {
    gemm_qs4_4x4_dot16(qx, ldq, m, k, kp, w, n, sw, wsum, sx, zx, bias, c, ldc, scratch);
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

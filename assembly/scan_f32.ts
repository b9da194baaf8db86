// Selective scan of one branch (MODEL.md §2.3 (c)), fp32, state h[E, N] kept per channel in registers.
//   for t in scan order:  h[c, n] = exp(delta[t, c] * A[c, n]) * h[c, n] + delta[t, c] * B[t, n] * u[t, c]
//                         y[t, c] = sum_n C[t, n] * h[c, n] + Dskip[c] * u[t, c]
// A = -exp(A_log) is precomputed at conversion. N is fixed at 16 (every Vim config): the state of one
// channel is four f32x4 registers, so the t loop runs with h never leaving registers. The decay is computed
// as 2^(delta * (A * log2 e)): A's factor is applied once per channel, and 2^y needs no range reduction.

import { exp2_nonpositive_f32x4, hsum_f32x4 } from './math_f32x4';

const LOG2E: f32 = 1.44269504088896341;

export const SCAN_D_STATE: i32 = 16;

/**
 * u, delta, y: [L, E] at row stride ld floats; channels [0, e) of them (a caller hands each thread its own
 * range of channels by offsetting u, delta, a, dskip and y). bc: rows of x_proj output at stride ldbc
 * floats; B at column 0 of `bc`, C at column 16 (the caller passes a pointer to column R). a: [E, 16].
 * dskip: [E]. reverse = true scans t = L-1 .. 0 (the backward branch, in original token order).
 */
export function selective_scan_f32(u: usize, delta: usize, a: usize, bc: usize, ldbc: i32, dskip: usize,
                                   y: usize, ld: i32, l: i32, e: i32, reverse: bool): void {
  const eBytes = <usize>ld << 2;
  const bcRow = <usize>ldbc << 2;
  for (let c = 0; c < e; c++) {
    const ap = a + (<usize>c << 6);
    const log2e = f32x4.splat(LOG2E);
    const a0 = f32x4.mul(v128.load(ap), log2e), a1 = f32x4.mul(v128.load(ap, 16), log2e);
    const a2 = f32x4.mul(v128.load(ap, 32), log2e), a3 = f32x4.mul(v128.load(ap, 48), log2e);
    const dc = load<f32>(dskip + (<usize>c << 2));
    let h0 = f32x4.splat(0), h1 = f32x4.splat(0), h2 = f32x4.splat(0), h3 = f32x4.splat(0);
    for (let i = 0; i < l; i++) {
      const t = reverse ? l - 1 - i : i;
      const off = <usize>t * eBytes + (<usize>c << 2);
      const dt = load<f32>(delta + off);
      const ut = load<f32>(u + off);
      const dtv = f32x4.splat(dt);
      const du = f32x4.splat(dt * ut);
      const row = bc + <usize>t * bcRow;
      h0 = f32x4.add(f32x4.mul(exp2_nonpositive_f32x4(f32x4.mul(dtv, a0)), h0), f32x4.mul(du, v128.load(row)));
      h1 = f32x4.add(f32x4.mul(exp2_nonpositive_f32x4(f32x4.mul(dtv, a1)), h1), f32x4.mul(du, v128.load(row, 16)));
      h2 = f32x4.add(f32x4.mul(exp2_nonpositive_f32x4(f32x4.mul(dtv, a2)), h2), f32x4.mul(du, v128.load(row, 32)));
      h3 = f32x4.add(f32x4.mul(exp2_nonpositive_f32x4(f32x4.mul(dtv, a3)), h3), f32x4.mul(du, v128.load(row, 48)));
      let s = f32x4.mul(v128.load(row, 64), h0);
      s = f32x4.add(s, f32x4.mul(v128.load(row, 80), h1));
      s = f32x4.add(s, f32x4.mul(v128.load(row, 96), h2));
      s = f32x4.add(s, f32x4.mul(v128.load(row, 112), h3));
      store<f32>(y + off, hsum_f32x4(s) + dc * ut);
    }
  }
}

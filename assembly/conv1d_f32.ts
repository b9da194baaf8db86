// Depthwise conv over tokens + SiLU, one branch of the mixer (MODEL.md §2.3 (a)), vectorised over channels.
//   forward  (causal):      u[t, c] = silu(b[c] + sum_k w[k, c] * x[t - (K-1) + k, c])
//   backward (anti-causal): u[t, c] = silu(b[c] + sum_k w[k, c] * x[t + (K-1) - k, c])
// Tokens outside [0, L) are zero. w arrives transposed as [K, E] so four channels load as one vector.

import { silu_f32x4 } from './math_f32x4';

/**
 * x: [L, E] at row stride ldx floats (the x half of in_proj's output); w: [K, E] and out: [L, E] at row
 * stride ld floats. Channels [0, e) of those rows, e a multiple of 4: a caller hands each thread its own
 * range of channels by offsetting x, w, bias and out (ld >= e).
 * The taps that fall inside [0, L) are worked out once per token, so the channel loop has no branch.
 */
export function conv1d_silu_f32(x: usize, ldx: i32, w: usize, bias: usize, out: usize, ld: i32,
                                l: i32, e: i32, kw: i32, reverse: bool): void {
  const xRow = <usize>ldx << 2;
  const eBytes = <usize>ld << 2;
  for (let t = 0; t < l; t++) {
    // Tap k reads token src(k) = t - (K-1) + k (forward) or t + (K-1) - k (backward).
    const k0 = reverse ? max(0, t + kw - l) : max(0, kw - 1 - t);   // first tap with src inside [0, L)
    const first = reverse ? t + (kw - 1) - k0 : t - (kw - 1) + k0;     // its token
    const step: isize = reverse ? -<isize>xRow : <isize>xRow;         // the next tap's token, in bytes
    const o = out + <usize>t * eBytes;
    for (let c = 0; c < e; c += 4) {
      const co = <usize>c << 2;
      let acc = v128.load(bias + co);
      let xp = x + <usize>first * xRow + co;
      let wp = w + <usize>k0 * eBytes + co;
      for (let k = k0; k < kw; k++) {
        acc = f32x4.add(acc, f32x4.mul(v128.load(wp), v128.load(xp)));
        xp += step;
        wp += eBytes;
      }
      v128.store(o + co, silu_f32x4(acc));
    }
  }
}

// Depthwise conv over tokens + SiLU, one branch of the mixer (MODEL.md §2.3 (a)), vectorised over channels.
//   forward  (causal):      u[t, c] = silu(b[c] + sum_k w[k, c] * x[t - (K-1) + k, c])
//   backward (anti-causal): u[t, c] = silu(b[c] + sum_k w[k, c] * x[t + (K-1) - k, c])
// Tokens outside [0, L) are zero. w arrives transposed as [K, E] so four channels load as one vector.

import { silu_f32x4 } from './math_f32x4';

/**
 * b[c..c+3] + sum over taps k0 .. K-1 of w[k, c..c+3] * x[src(k), c..c+3]: `x` at channel c of token
 * src(k0), `step` bytes to the next tap's token; `w` at channel c of tap k0, `wRow` bytes a tap.
 */
// @ts-ignore: decorator
@inline
function taps(x: usize, step: isize, w: usize, wRow: usize, bias: usize, n: i32): v128 {
  let acc = v128.load(bias);
  for (let k = 0; k < n; k++) {
    acc = f32x4.add(acc, f32x4.mul(v128.load(w), v128.load(x)));
    x += step;
    w += wRow;
  }
  return acc;
}

/**
 * x: [L, E] at row stride ldx floats (the x half of in_proj's output); w: [K, E] and out: [L, E] at row
 * stride ld floats. Channels [0, e) of those rows, e a multiple of 4: a caller hands each thread its own
 * range of channels by offsetting x, w, bias and out (ld >= e).
 * The taps that fall inside [0, L) are worked out once per token, so the channel loop has no branch; it
 * runs 16 channels a step where it can, so that the SiLU's constants are set up once for four vectors.
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
    const n = kw - k0;
    const xt = x + <usize>first * xRow, wt = w + <usize>k0 * eBytes, o = out + <usize>t * eBytes;
    let c = 0;
    for (; c + 16 <= e; c += 16) {
      const co = <usize>c << 2;
      const a0 = taps(xt + co, step, wt + co, eBytes, bias + co, n);
      const a1 = taps(xt + co + 16, step, wt + co + 16, eBytes, bias + co + 16, n);
      const a2 = taps(xt + co + 32, step, wt + co + 32, eBytes, bias + co + 32, n);
      const a3 = taps(xt + co + 48, step, wt + co + 48, eBytes, bias + co + 48, n);
      v128.store(o + co, silu_f32x4(a0));
      v128.store(o + co, silu_f32x4(a1), 16);
      v128.store(o + co, silu_f32x4(a2), 32);
      v128.store(o + co, silu_f32x4(a3), 48);
    }
    for (; c < e; c += 4) {
      const co = <usize>c << 2;
      v128.store(o + co, silu_f32x4(taps(xt + co, step, wt + co, eBytes, bias + co, n)));
    }
  }
}

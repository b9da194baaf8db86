// Depthwise conv over tokens + SiLU, one branch of the mixer (spec §2.3 (a)), vectorised over channels.
//   forward  (causal):      u[t, c] = silu(b[c] + sum_k w[k, c] * x[t - (K-1) + k, c])
//   backward (anti-causal): u[t, c] = silu(b[c] + sum_k w[k, c] * x[t + (K-1) - k, c])
// Tokens outside [0, L) are zero. w arrives transposed as [K, E] so four channels load as one vector.

import { silu_f32x4 } from './math_f32x4';

/** x: [L, E] at row stride ldx floats (the x half of in_proj's output); out: [L, E] contiguous. */
export function conv1d_silu_f32(x: usize, ldx: i32, w: usize, bias: usize, out: usize,
                                l: i32, e: i32, kw: i32, reverse: bool): void {
  const xRow = <usize>ldx << 2;
  const eBytes = <usize>e << 2;
  for (let t = 0; t < l; t++) {
    for (let c = 0; c < e; c += 4) {
      const co = <usize>c << 2;
      let acc = v128.load(bias + co);
      for (let k = 0; k < kw; k++) {
        const src = reverse ? t + (kw - 1) - k : t - (kw - 1) + k;
        if (src < 0 || src >= l) continue;
        acc = f32x4.add(acc, f32x4.mul(v128.load(w + <usize>k * eBytes + co),
                                       v128.load(x + <usize>src * xRow + co)));
      }
      v128.store(out + <usize>t * eBytes + co, silu_f32x4(acc));
    }
  }
}

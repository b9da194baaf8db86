// The gate of MambaQuant's smooth-fused rotation (spec quantization-methods §9.2, S2): the gate rows of
// in_proj were divided by s per channel (z' = z / s), and the scaled SiLU v * sigmoid(s * v) restores
// SiLU(z) / s, so the out_proj input arrives smoothed by 1/s without an extra pass.
//   yf[t, c] = (yf[t, c] + yb[t, c]) * 0.5 * z'[t, c] * sigmoid(s[c] * z'[t, c])

import { exp_f32x4 } from './math_f32x4';

/** yf, yb: [L, E] contiguous; z': [L, E] at row stride ldz floats; s: [E]. e is a multiple of 4. */
export function combine_gate_scaled_f32(yf: usize, yb: usize, z: usize, ldz: i32, l: i32, e: i32, s: usize): void {
  const half = f32x4.splat(0.5), one = f32x4.splat(1.0);
  for (let t = 0; t < l; t++) {
    const yr = <usize>t * (<usize>e << 2);
    const zr = z + <usize>t * (<usize>ldz << 2);
    for (let c = 0; c < e; c += 4) {
      const o = <usize>c << 2;
      const v = v128.load(zr + o);
      const gate = f32x4.div(v, f32x4.add(one, exp_f32x4(f32x4.neg(f32x4.mul(v128.load(s + o), v)))));
      const avg = f32x4.mul(f32x4.add(v128.load(yf + yr + o), v128.load(yb + yr + o)), half);
      v128.store(yf + yr + o, f32x4.mul(avg, gate));
    }
  }
}

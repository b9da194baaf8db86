// The gate that combines the mixer's two branches (MODEL.md §2.3), in two variants from one source:
//   combine_gate_f32:         yf[t, c] = (yf[t, c] + yb[t, c]) * 0.5 * silu(z[t, c])     (halved sum, gated once)
//   combine_gate_scaled_f32:  yf[t, c] = (yf[t, c] + yb[t, c]) * 0.5 * z'[t, c] * sigmoid(s[c] * z'[t, c])
// The scaled one is the gate of MambaQuant's smooth-fused rotation (QUANT-METHODS.md §9.2, S2): the
// gate rows of in_proj were divided by s per channel (z' = z / s), and the scaled SiLU v * sigmoid(s * v)
// restores SiLU(z) / s, so the out_proj input arrives smoothed by 1/s without an extra pass.
// yf, yb: [L, E] contiguous; z: [L, E] at row stride ldz floats; s: [E]. e is a multiple of 4.

import { exp_f32x4 } from './math_f32x4';

export function combine_gate_f32(yf: usize, yb: usize, z: usize, ldz: i32, l: i32, e: i32): void {
  combine_gate(yf, yb, z, ldz, l, e, false, 0);
}

export function combine_gate_scaled_f32(yf: usize, yb: usize, z: usize, ldz: i32, l: i32, e: i32, s: usize): void {
  combine_gate(yf, yb, z, ldz, l, e, true, s);
}

/**
 * Both variants: the gate is v / (1 + e^-(s * v)), or v / (1 + e^-v) unscaled, which is silu_f32x4's
 * sequence of operations. Inlined with `scaled` a constant, so neither variant branches in its loop.
 */
// @ts-ignore: decorator
@inline
function combine_gate(yf: usize, yb: usize, z: usize, ldz: i32, l: i32, e: i32, scaled: bool, s: usize): void {
  const half = f32x4.splat(0.5), one = f32x4.splat(1.0);
  for (let t = 0; t < l; t++) {
    const yr = <usize>t * (<usize>e << 2);
    const zr = z + <usize>t * (<usize>ldz << 2);
    for (let c = 0; c < e; c += 4) {
      const o = <usize>c << 2;
      const v = v128.load(zr + o);
      const sv = scaled ? f32x4.mul(v128.load(s + o), v) : v;
      const gate = f32x4.div(v, f32x4.add(one, exp_f32x4(f32x4.neg(sv))));
      const avg = f32x4.mul(f32x4.add(v128.load(yf + yr + o), v128.load(yb + yr + o)), half);
      v128.store(yf + yr + o, f32x4.mul(avg, gate));
    }
  }
}

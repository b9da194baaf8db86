// Elementwise steps of the mixer: softplus for delta, and the gate that combines both branches.

import { silu_f32x4, softplus_f32x4 } from './math_f32x4';

/** x[i] = softplus(x[i]) (PyTorch's log1p(exp(x)), x for x > 20), for n floats, 4 at a time. */
export function softplus_inplace_f32(x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = x + (<usize>i << 2);
    v128.store(p, softplus_f32x4(v128.load(p)));
  }
  for (; i < n; i++) {
    const p = x + (<usize>i << 2);
    store<f32>(p, f32x4.extract_lane(softplus_f32x4(f32x4.splat(load<f32>(p))), 0));
  }
}

/**
 * yf[t, c] = (yf[t, c] + yb[t, c]) * 0.5 * silu(z[t, c]) (spec §2.3: halved sum, gated once).
 * yf, yb: [L, E] contiguous; z: [L, E] at row stride ldz floats.
 */
export function combine_gate_f32(yf: usize, yb: usize, z: usize, ldz: i32, l: i32, e: i32): void {
  const half = f32x4.splat(0.5);
  for (let t = 0; t < l; t++) {
    const yr = <usize>t * (<usize>e << 2);
    const zr = z + <usize>t * (<usize>ldz << 2);
    for (let c = 0; c < e; c += 4) {
      const o = <usize>c << 2;
      const s = f32x4.mul(f32x4.add(v128.load(yf + yr + o), v128.load(yb + yr + o)), half);
      v128.store(yf + yr + o, f32x4.mul(s, silu_f32x4(v128.load(zr + o))));
    }
  }
}

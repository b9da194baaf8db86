// RMSNorm (MODEL.md §2.2) and the fp32 residual add.
//   out[t, j] = x[t, j] * w[j] / sqrt(mean_j(x[t, j]^2) + eps)     over the D channels of one token

import { hsum_f32x4 } from './math_f32x4';

/** RMSNorm of `rows` tokens of width d (multiple of 4), rows at stride d. */
export function rmsnorm_f32(x: usize, w: usize, out: usize, rows: i32, d: i32, eps: f32): void {
  const rowBytes = <usize>d << 2;
  for (let t = 0; t < rows; t++) {
    const xr = x + <usize>t * rowBytes;
    const yr = out + <usize>t * rowBytes;
    let ss = f32x4.splat(0);
    for (let j = 0; j < d; j += 4) {
      const v = v128.load(xr + (<usize>j << 2));
      ss = f32x4.add(ss, f32x4.mul(v, v));
    }
    const inv = f32x4.splat(<f32>1.0 / Mathf.sqrt(hsum_f32x4(ss) / <f32>d + eps));
    for (let j = 0; j < d; j += 4) {
      const o = <usize>j << 2;
      v128.store(yr + o, f32x4.mul(f32x4.mul(v128.load(xr + o), inv), v128.load(w + o)));
    }
  }
}

/** x[i] += y[i] for n floats (n multiple of 4). */
export function add_inplace_f32(x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2;
    v128.store(x + o, f32x4.add(v128.load(x + o), v128.load(y + o)));
  }
}

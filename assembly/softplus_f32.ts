// Elementwise step of the mixer: softplus for delta.

import { softplus_f32x4 } from './math_f32x4';

/**
 * x[i] = softplus(x[i]) (PyTorch's log1p(exp(x)), x for x > 20), for n floats: 16 at a time (so that the
 * constants are set up once for four vectors), then 4, then one.
 */
export function softplus_inplace_f32(x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = x + (<usize>i << 2);
    const v0 = v128.load(p), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
    v128.store(p, softplus_f32x4(v0));
    v128.store(p, softplus_f32x4(v1), 16);
    v128.store(p, softplus_f32x4(v2), 32);
    v128.store(p, softplus_f32x4(v3), 48);
  }
  for (; i + 4 <= n; i += 4) {
    const p = x + (<usize>i << 2);
    v128.store(p, softplus_f32x4(v128.load(p)));
  }
  for (; i < n; i++) {
    const p = x + (<usize>i << 2);
    store<f32>(p, f32x4.extract_lane(softplus_f32x4(f32x4.splat(load<f32>(p))), 0));
  }
}

// Vectorised transcendental functions for f32x4, shared by the scan, the gates and softplus.
//
// exp: Cody-Waite range reduction x = k*ln2 + r, |r| <= ln2/2, a degree-6 minimax polynomial for e^r
// (the classic single-precision coefficients), then scaling by 2^k through the exponent bits.
// Measured max relative error against Math.exp over [-87, 88]: see test/math.test.ts (about 2 ulp).
// Inputs are clamped to [-87.3, 88.7] so that 2^k stays a normal float: below the clamp the true value
// (< 1.2e-38) is returned as ~1.2e-38, an absolute error no consumer here can see.

const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const EXP_MIN: f32 = -87.3;
const EXP_MAX: f32 = 88.7;

// @ts-ignore: decorator
@inline
export function exp_f32x4(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(EXP_MIN)), f32x4.splat(EXP_MAX));
  const k = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  let r = f32x4.sub(x, f32x4.mul(k, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(k, f32x4.splat(LN2_LO)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const r2 = f32x4.mul(r, r);
  const er = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1.0));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(k), i32x4.splat(127)), 23);
  return f32x4.mul(er, scale);
}

/** silu(v) = v * sigmoid(v) = v / (1 + e^-v). */
// @ts-ignore: decorator
@inline
export function silu_f32x4(v: v128): v128 {
  const e = exp_f32x4(f32x4.neg(v));
  return f32x4.div(v, f32x4.add(f32x4.splat(1.0), e));
}

/** Horizontal sum of the four lanes. */
// @ts-ignore: decorator
@inline
export function hsum_f32x4(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) +
    (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** Test hook: out[i] = exp(x[i]) for n floats (n multiple of 4). */
export function exp_f32_array(x: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    v128.store(out + (<usize>i << 2), exp_f32x4(v128.load(x + (<usize>i << 2))));
  }
}

// Vectorised transcendental functions for f32x4, shared by the scan, the gates and softplus.
// Clamps use pmin/pmax (one minps/maxps on x86-64) rather than min/max, whose NaN and signed-zero rules
// cost V8 about seven instructions each; the inputs here are finite.
//
// exp: Cody-Waite range reduction x = k*ln2 + r, |r| <= ln2/2, a degree-6 minimax polynomial for e^r
// (the classic single-precision coefficients), then scaling by 2^k through the exponent bits.
// Max relative error against Math.exp over [-87, 88] is below 4e-7, a few ulp: checked by the test
// 'exp_f32x4: max relative error ...' in test/kernels.test.ts.
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
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(EXP_MIN)), f32x4.splat(EXP_MAX));
  const magic = f32x4.splat(12582912.0);   // 1.5 * 2^23: see exp2_nonpositive_f32x4
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E)), magic);
  const k = f32x4.sub(t, magic);
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
  return f32x4.mul(er, i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23));
}

/**
 * 2^y for y <= 0 (the scan's decays exp(delta * A) with A premultiplied by log2(e)): y = k + f, |f| <= 1/2,
 * a degree-5 fit of 2^f (relative error 7.5e-8 in exact arithmetic, 2.4e-7 evaluated in f32), times 2^k
 * through the exponent bits. Rounding to k uses the 1.5 * 2^23 trick: adding it leaves k (ties to even) in
 * the low mantissa bits, so k + 127 shifted into the exponent field is one integer add and one shift
 * (i32x4.trunc_sat_f32x4_s costs about eight instructions on x86-64). Below -126 it returns 2^-126.
 */
// @ts-ignore: decorator
@inline
export function exp2_nonpositive_f32x4(y: v128): v128 {
  const magic = f32x4.splat(12582912.0);   // 1.5 * 2^23
  y = f32x4.pmax(y, f32x4.splat(-126.0));
  const t = f32x4.add(y, magic);
  const f = f32x4.sub(y, f32x4.sub(t, magic));
  let p = f32x4.splat(1.3276471291e-3);
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(9.6755418926e-3));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(5.5507130921e-2));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(2.4022120237e-1));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(6.9314694405e-1));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(1.0000001192));
  return f32x4.mul(p, i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23));
}

/**
 * softplus(v) = log(1 + e^v) = max(v, 0) + log1p(z), z = e^-|v| in (0, 1]: log1p(z) = 2 atanh(s) with
 * s = z / (2 + z) <= 1/3, summed to s^11 (truncation < 2e-7 relative). No cancellation for small z, and
 * for v > 20 the log1p term is below half an ulp of v, as PyTorch's threshold assumes.
 */
// @ts-ignore: decorator
@inline
export function softplus_f32x4(v: v128): v128 {
  const z = exp_f32x4(v128.or(v, f32x4.splat(-0.0)));   // -|v|: the sign bit set (abs and neg cost 3 each on x86-64)
  const s = f32x4.div(z, f32x4.add(f32x4.splat(2.0), z));
  const s2 = f32x4.mul(s, s);
  let p = f32x4.splat(<f32>(1.0 / 11.0));
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(<f32>(1.0 / 9.0)));
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(<f32>(1.0 / 7.0)));
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(<f32>(1.0 / 5.0)));
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(<f32>(1.0 / 3.0)));
  p = f32x4.add(f32x4.mul(p, s2), f32x4.splat(1.0));
  const log1p = f32x4.mul(f32x4.add(s, s), p);
  return f32x4.add(f32x4.pmax(v, f32x4.splat(0)), log1p);
}

/** silu(v) = v * sigmoid(v) = v / (1 + e^-v). */
// @ts-ignore: decorator
@inline
export function silu_f32x4(v: v128): v128 {
  const e = exp_f32x4(v128.xor(v, f32x4.splat(-0.0)));   // -v: the sign bit flipped
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

/** Test hook: out[i] = 2^x[i] (exp2_nonpositive_f32x4) for n floats (n multiple of 4). */
export function exp2_nonpositive_f32_array(x: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    v128.store(out + (<usize>i << 2), exp2_nonpositive_f32x4(v128.load(x + (<usize>i << 2))));
  }
}

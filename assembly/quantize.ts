// fp32 -> int8 activations at a quantized site (QUANT-METHODS.md §2), with the scale and zero
// point of every row written out for the GEMM epilogue (qgemm.ts):
//   q[t, i] = clamp(nearest(x[t, i] * inv) + z, qmin, qmax),   inv = f32(1 / scale),   nearest = ties to even
// The product x * inv is one f32 multiply and f32.nearest rounds half to even, so a host reference that
// rounds the same product the same way reproduces every integer. qmin/qmax give the bit width: -128..127 for
// 8-bit activations, -32..31 and -8..7 when 6- and 4-bit activations are simulated on the int8 kernels.
//
// Three kinds of quantizer, chosen by the arguments:
//   static per tensor  scale/zero point to one f32 / one i32, perToken = 0
//   static per token   scale/zero point to [rows] tables (PTQ4VM's per-token static ranges), perToken = 1
//   dynamic per token  scale = 0: each row's own range [min(x, 0), max(x, 0)] mapped onto qmin..qmax

/**
 * Quantizes x [rows, k] (row stride ldx floats) into q [rows, ldq bytes]; bytes k..ldq-1 of every row are
 * zeroed (the GEMM reads whole padded blocks). Writes sx[rows] (scale) and zx[rows] (zero point).
 */
export function quantize_s8(x: usize, ldx: i32, rows: i32, k: i32, scale: usize, zero: usize, perToken: i32,
                            qmin: i32, qmax: i32, q: usize, ldq: i32, sx: usize, zx: usize): void {
  for (let t = 0; t < rows; t++) {
    const xr = x + ((<usize>t * <usize>ldx) << 2);
    const qr = q + <usize>t * <usize>ldq;
    let s: f32, z: i32;
    if (scale) {
      const at = perToken ? <usize>t << 2 : 0;
      s = load<f32>(scale + at);
      z = load<i32>(zero + at);
    } else {
      let lo: f32 = 0, hi: f32 = 0;
      for (let i = 0; i < k; i++) {
        const v = load<f32>(xr + (<usize>i << 2));
        lo = min(lo, v);
        hi = max(hi, v);
      }
      s = (hi - lo) / <f32>(qmax - qmin);
      if (s == 0) s = 1;   // an all-zero row: any scale represents it exactly
      z = qmin - <i32>nearest<f32>(lo / s);
    }
    store<f32>(sx + (<usize>t << 2), s);
    store<i32>(zx + (<usize>t << 2), z);
    quantize_row(xr, k, <f32>1 / s, z, qmin, qmax, qr);
    memory.fill(qr + <usize>k, 0, <usize>(ldq - k));
  }
}

/** One row: 16 values per step (four f32x4 narrowed to one i8x16), then the tail one by one. */
// @ts-ignore: decorator
@inline
function quantize_row(xr: usize, k: i32, inv: f32, z: i32, qmin: i32, qmax: i32, qr: usize): void {
  // Clamp before adding z, in float, so that huge values cannot overflow the integer conversion.
  const lo = <f32>(qmin - z), hi = <f32>(qmax - z);
  const vinv = f32x4.splat(inv), vlo = f32x4.splat(lo), vhi = f32x4.splat(hi), vz = i32x4.splat(z);
  let i = 0;
  for (; i + 16 <= k; i += 16) {
    const p = xr + (<usize>i << 2);
    const a = quantize4(v128.load(p), vinv, vlo, vhi, vz);
    const b = quantize4(v128.load(p, 16), vinv, vlo, vhi, vz);
    const c = quantize4(v128.load(p, 32), vinv, vlo, vhi, vz);
    const d = quantize4(v128.load(p, 48), vinv, vlo, vhi, vz);
    v128.store(qr + <usize>i, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d)));
  }
  for (; i < k; i++) {
    const r = min(max(nearest<f32>(load<f32>(xr + (<usize>i << 2)) * inv), lo), hi);
    store<i8>(qr + <usize>i, <i8>(<i32>r + z));
  }
}

/** Four values: the same steps as the scalar tail, lane by lane. */
// @ts-ignore: decorator
@inline
function quantize4(v: v128, inv: v128, lo: v128, hi: v128, z: v128): v128 {
  const r = f32x4.pmin(f32x4.pmax(f32x4.nearest(f32x4.mul(v, inv)), lo), hi);   // pmin/pmax: see math_f32x4.ts
  return i32x4.add(i32x4.trunc_sat_f32x4_s(r), z);
}

/** x[t, i] -= shift[i] for rows of k floats at row stride ldx (the OS+ channel shift at a site). */
export function shift_channels_f32(x: usize, ldx: i32, rows: i32, k: i32, shift: usize): void {
  for (let t = 0; t < rows; t++) {
    const xr = x + ((<usize>t * <usize>ldx) << 2);
    for (let i = 0; i < k; i++) {
      const o = <usize>i << 2;
      store<f32>(xr + o, load<f32>(xr + o) - load<f32>(shift + o));
    }
  }
}

// fp32 matrix product for every Linear layer and the patch embedding (as a GEMM over patches):
//   C[m, n] = sum_k A[m, k] * W[n, k] + bias[n]        (PyTorch Linear: y = x @ W^T + b)
// W arrives packed as Wp[k, n] (the transpose) with its row width padded to a multiple of 8, so the
// inner loop broadcasts one A value and multiplies it into 8 consecutive outputs (two f32x4 vectors).
// Tile: 4 rows of A x 8 outputs = 8 accumulators, which fits the 16 SIMD registers of x86-64 and arm64.
// Plain f32x4 multiply and add (no fused multiply-add), the same code and the same floats in both builds.

/** Row width of a packed weight: N rounded up to a multiple of 8. */
function packed_width(n: i32): i32 {
  return (n + 7) & ~7;
}

// @ts-ignore: decorator
@inline
function lane(v: v128, j: i32): f32 {
  // extract_lane needs a constant index
  if (j == 0) return f32x4.extract_lane(v, 0);
  if (j == 1) return f32x4.extract_lane(v, 1);
  if (j == 2) return f32x4.extract_lane(v, 2);
  return f32x4.extract_lane(v, 3);
}

/** Writes 8 (or, at the right edge, `cols` < 8) outputs of one row, adding the bias when given. */
// @ts-ignore: decorator
@inline
function store_row(c: usize, v0: v128, v1: v128, bias: usize, n0: i32, cols: i32): void {
  if (cols == 8) {
    if (bias) {
      const b = bias + (<usize>n0 << 2);
      v0 = f32x4.add(v0, v128.load(b));
      v1 = f32x4.add(v1, v128.load(b, 16));
    }
    v128.store(c, v0);
    v128.store(c, v1, 16);
    return;
  }
  for (let j = 0; j < cols; j++) {
    let v: f32 = j < 4 ? lane(v0, j) : lane(v1, j - 4);
    if (bias) v += load<f32>(bias + (<usize>(n0 + j) << 2));
    store<f32>(c + (<usize>j << 2), v);
  }
}

/**
 * C[M, N] (row stride ldc floats) = A[M, K] (row stride lda) x Wp[K, packed_width(N)] + bias[N].
 * bias = 0 means no bias.
 */
export function gemm_f32_4x8(a: usize, lda: i32, wp: usize, bias: usize, c: usize, ldc: i32,
                             m: i32, k: i32, n: i32): void {
  const np = packed_width(n);
  const wRow = <usize>np << 2;
  const aRow = <usize>lda << 2;
  const cRow = <usize>ldc << 2;
  let m0 = 0;
  for (; m0 + 4 <= m; m0 += 4) {
    const a0 = a + <usize>m0 * aRow;
    const c0 = c + <usize>m0 * cRow;
    for (let n0 = 0; n0 < n; n0 += 8) {
      let acc00 = f32x4.splat(0), acc01 = f32x4.splat(0);
      let acc10 = f32x4.splat(0), acc11 = f32x4.splat(0);
      let acc20 = f32x4.splat(0), acc21 = f32x4.splat(0);
      let acc30 = f32x4.splat(0), acc31 = f32x4.splat(0);
      let w = wp + (<usize>n0 << 2);
      let ap = a0;
      for (let kk = 0; kk < k; kk++) {
        const w0 = v128.load(w);
        const w1 = v128.load(w, 16);
        const x0 = f32x4.splat(load<f32>(ap));
        const x1 = f32x4.splat(load<f32>(ap + aRow));
        const x2 = f32x4.splat(load<f32>(ap + 2 * aRow));
        const x3 = f32x4.splat(load<f32>(ap + 3 * aRow));
        acc00 = f32x4.add(acc00, f32x4.mul(x0, w0)); acc01 = f32x4.add(acc01, f32x4.mul(x0, w1));
        acc10 = f32x4.add(acc10, f32x4.mul(x1, w0)); acc11 = f32x4.add(acc11, f32x4.mul(x1, w1));
        acc20 = f32x4.add(acc20, f32x4.mul(x2, w0)); acc21 = f32x4.add(acc21, f32x4.mul(x2, w1));
        acc30 = f32x4.add(acc30, f32x4.mul(x3, w0)); acc31 = f32x4.add(acc31, f32x4.mul(x3, w1));
        w += wRow;
        ap += 4;
      }
      const cols = min(8, n - n0);
      const cp = c0 + (<usize>n0 << 2);
      store_row(cp, acc00, acc01, bias, n0, cols);
      store_row(cp + cRow, acc10, acc11, bias, n0, cols);
      store_row(cp + 2 * cRow, acc20, acc21, bias, n0, cols);
      store_row(cp + 3 * cRow, acc30, acc31, bias, n0, cols);
    }
  }
  for (; m0 < m; m0++) {
    const a0 = a + <usize>m0 * aRow;
    const c0 = c + <usize>m0 * cRow;
    for (let n0 = 0; n0 < n; n0 += 8) {
      let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
      let w = wp + (<usize>n0 << 2);
      for (let kk = 0; kk < k; kk++) {
        const x = f32x4.splat(load<f32>(a0 + (<usize>kk << 2)));
        acc0 = f32x4.add(acc0, f32x4.mul(x, v128.load(w)));
        acc1 = f32x4.add(acc1, f32x4.mul(x, v128.load(w, 16)));
        w += wRow;
      }
      store_row(c0 + (<usize>n0 << 2), acc0, acc1, bias, n0, min(8, n - n0));
    }
  }
}

// The online rotation of a quantized site (QuaRot / MambaQuant R2, spec quantization-methods §6):
//   x <- (x * d) @ H_n / sqrt(n)       per row, n = 2^k or 12 * 2^k, d a per-channel vector (the ±1 signs)
// with H_{12 * 2^k} = H_12 (x) H_{2^k} (Kronecker; H_{2^k} Sylvester, H_12 Paley's construction for q = 11).
// Element i * 2^k + j of a row sits at (i, j) of a 12 x 2^k matrix: a fast Walsh-Hadamard butterfly
// (k * 2^k add/sub) runs along each of the 12 segments, then H_12^T mixes the segments column by column
// (12 x 12 adds per column). src/quant/hadamard.ts builds the same matrix for the offline folds.

// H_12 = I + [[0, 1^T], [-1, Q11]], Q11[i][j] = Legendre symbol of (j - i) mod 11; H_12 H_12^T = 12 I.
const H12: usize = memory.data<i8>([
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  -1, 1, 1, -1, 1, 1, 1, -1, -1, -1, 1, -1,
  -1, -1, 1, 1, -1, 1, 1, 1, -1, -1, -1, 1,
  -1, 1, -1, 1, 1, -1, 1, 1, 1, -1, -1, -1,
  -1, -1, 1, -1, 1, 1, -1, 1, 1, 1, -1, -1,
  -1, -1, -1, 1, -1, 1, 1, -1, 1, 1, 1, -1,
  -1, -1, -1, -1, 1, -1, 1, 1, -1, 1, 1, 1,
  -1, 1, -1, -1, -1, 1, -1, 1, 1, -1, 1, 1,
  -1, 1, 1, -1, -1, -1, 1, -1, 1, 1, -1, 1,
  -1, 1, 1, 1, -1, -1, -1, 1, -1, 1, 1, -1,
  -1, -1, 1, 1, 1, -1, -1, -1, 1, -1, 1, 1,
  -1, 1, -1, 1, 1, 1, -1, -1, -1, 1, -1, 1,
]);
/** One column of the 12 x 2^k view, gathered before H_12 overwrites it. */
const COLUMN: usize = memory.data(12 * 4, 16);

/** In-place Walsh-Hadamard butterfly (unnormalised Sylvester H_len) over len floats at p, len = 2^k. */
function fwht(p: usize, len: i32): void {
  for (let h = 1; h < len; h <<= 1) {
    for (let i = 0; i < len; i += h << 1) {
      for (let j = i; j < i + h; j++) {
        const a = p + (<usize>j << 2), b = a + (<usize>h << 2);
        const u = load<f32>(a), v = load<f32>(b);
        store<f32>(a, u + v);
        store<f32>(b, u - v);
      }
    }
  }
}

/**
 * Rotates `rows` rows of n floats (row stride ldx) in place: x <- (x * d) @ H_n / sqrt(n).
 * n must be 2^k or 12 * 2^k (the host checks).
 */
export function hadamard_rows_f32(x: usize, ldx: i32, rows: i32, n: i32, d: usize): void {
  const m = (n & (n - 1)) == 0 ? 1 : 12;   // number of segments
  const len = n / m;
  const norm = <f32>(1.0 / Math.sqrt(<f64>n));
  for (let t = 0; t < rows; t++) {
    const xr = x + ((<usize>t * <usize>ldx) << 2);
    for (let i = 0; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(xr + o, load<f32>(xr + o) * load<f32>(d + o));
    }
    for (let s = 0; s < m; s++) fwht(xr + ((<usize>(s * len)) << 2), len);
    if (m == 1) {
      for (let i = 0; i < n; i++) store<f32>(xr + (<usize>i << 2), load<f32>(xr + (<usize>i << 2)) * norm);
      continue;
    }
    for (let j = 0; j < len; j++) {
      for (let i = 0; i < 12; i++) store<f32>(COLUMN + (<usize>i << 2), load<f32>(xr + (<usize>(i * len + j) << 2)));
      for (let o = 0; o < 12; o++) {
        // Output segment o: sum_i H_12[i][o] * column[i]  (the row vector times H_12).
        let acc: f32 = 0;
        for (let i = 0; i < 12; i++) acc += <f32>load<i8>(H12 + <usize>(i * 12 + o)) * load<f32>(COLUMN + (<usize>i << 2));
        store<f32>(xr + (<usize>(o * len + j) << 2), acc * norm);
      }
    }
  }
}

// The online rotation of a quantized site (QuaRot / MambaQuant R2, QUANT-METHODS.md §6):
//   x <- (x * d) @ H_n / sqrt(n)       per row, n = 2^k or 12 * 2^k, d a per-channel vector (the ±1 signs)
// with H_{12 * 2^k} = H_12 (x) H_{2^k} (Kronecker; H_{2^k} Sylvester, H_12 Paley's construction for q = 11).
// Element i * 2^k + j of a row sits at (i, j) of a 12 x 2^k matrix: a fast Walsh-Hadamard butterfly
// (k * 2^k add/sub) runs along each of the 12 segments, then H_12^T mixes the segments column by column
// (12 x 12 signed adds per column, 4 columns per vector). src/quant/hadamard.ts builds the same matrix for the offline folds.

// H_12 = I + [[0, 1^T], [-1, Q11]], Q11[i][j] = Legendre symbol of (j - i) mod 11; H_12 H_12^T = 12 I.
// Stored transposed, as f32: row o holds column o of H_12 (the signs that make output segment o).
const H12T: usize = memory.data<f32>([
   1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
   1,  1, -1,  1, -1, -1, -1,  1,  1,  1, -1,  1,
   1,  1,  1, -1,  1, -1, -1, -1,  1,  1,  1, -1,
   1, -1,  1,  1, -1,  1, -1, -1, -1,  1,  1,  1,
   1,  1, -1,  1,  1, -1,  1, -1, -1, -1,  1,  1,
   1,  1,  1, -1,  1,  1, -1,  1, -1, -1, -1,  1,
   1,  1,  1,  1, -1,  1,  1, -1,  1, -1, -1, -1,
   1, -1,  1,  1,  1, -1,  1,  1, -1,  1, -1, -1,
   1, -1, -1,  1,  1,  1, -1,  1,  1, -1,  1, -1,
   1, -1, -1, -1,  1,  1,  1, -1,  1,  1, -1,  1,
   1,  1, -1, -1, -1,  1,  1,  1, -1,  1,  1, -1,
   1, -1,  1, -1, -1, -1,  1,  1,  1, -1,  1,  1,
]);

// @ts-ignore: decorator
@inline
function sign(o: i32, i: i32): v128 {
  return v128.load32_splat(H12T + (<usize>(o * 12 + i) << 2));
}

/**
 * In-place Walsh-Hadamard butterfly (unnormalised Sylvester H_len) over len floats at p, len = 2^k.
 * Stages with h >= 4 pair whole vectors; h = 1 and 2 pair lanes inside a vector (a shuffle and a signed add).
 */
function fwht(p: usize, len: i32): void {
  if (len < 4) {
    if (len == 2) {
      const u = load<f32>(p), v = load<f32>(p, 4);
      store<f32>(p, u + v);
      store<f32>(p, u - v, 4);
    }
    return;
  }
  const odd = f32x4(1, -1, 1, -1), high = f32x4(1, 1, -1, -1);
  for (let i = 0; i < len; i += 4) {
    const a = p + (<usize>i << 2);
    let v = v128.load(a);
    v = f32x4.add(f32x4.mul(v, odd), i32x4.shuffle(v, v, 1, 0, 3, 2));    // h = 1
    v = f32x4.add(f32x4.mul(v, high), i32x4.shuffle(v, v, 2, 3, 0, 1));   // h = 2
    v128.store(a, v);
  }
  for (let h = 4; h < len; h <<= 1) {
    for (let i = 0; i < len; i += h << 1) {
      for (let j = i; j < i + h; j += 4) {
        const a = p + (<usize>j << 2), b = a + (<usize>h << 2);
        const u = v128.load(a), v = v128.load(b);
        v128.store(a, f32x4.add(u, v));
        v128.store(b, f32x4.sub(u, v));
      }
    }
  }
}

/** x[i] *= s[i] * norm for n floats (s = 0: no per-channel factor). */
function scale_row(x: usize, n: i32, s: usize, norm: f32): void {
  let i = 0;
  const vn = f32x4.splat(norm);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const f = s ? f32x4.mul(v128.load(s + o), vn) : vn;
    v128.store(x + o, f32x4.mul(v128.load(x + o), f));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(x + o, load<f32>(x + o) * (s ? load<f32>(s + o) * norm : norm));
  }
}

/**
 * Column block j..j+3 of the 12 x len view times H_12, in place: the 12 segment vectors are loaded into
 * registers first, then each output segment o = sum_i H_12[i][o] * segment i, summed in order of i.
 */
// @ts-ignore: decorator
@inline
function mix12(xr: usize, len: i32, j: i32): void {
  const step = <usize>len << 2;
  const p = xr + (<usize>j << 2);
  const v0 = v128.load(p), v1 = v128.load(p + step), v2 = v128.load(p + 2 * step), v3 = v128.load(p + 3 * step);
  const v4 = v128.load(p + 4 * step), v5 = v128.load(p + 5 * step), v6 = v128.load(p + 6 * step);
  const v7 = v128.load(p + 7 * step), v8 = v128.load(p + 8 * step), v9 = v128.load(p + 9 * step);
  const v10 = v128.load(p + 10 * step), v11 = v128.load(p + 11 * step);
  for (let o = 0; o < 12; o++) {
    let acc = f32x4.mul(v0, sign(o, 0));
    acc = f32x4.add(acc, f32x4.mul(v1, sign(o, 1)));
    acc = f32x4.add(acc, f32x4.mul(v2, sign(o, 2)));
    acc = f32x4.add(acc, f32x4.mul(v3, sign(o, 3)));
    acc = f32x4.add(acc, f32x4.mul(v4, sign(o, 4)));
    acc = f32x4.add(acc, f32x4.mul(v5, sign(o, 5)));
    acc = f32x4.add(acc, f32x4.mul(v6, sign(o, 6)));
    acc = f32x4.add(acc, f32x4.mul(v7, sign(o, 7)));
    acc = f32x4.add(acc, f32x4.mul(v8, sign(o, 8)));
    acc = f32x4.add(acc, f32x4.mul(v9, sign(o, 9)));
    acc = f32x4.add(acc, f32x4.mul(v10, sign(o, 10)));
    acc = f32x4.add(acc, f32x4.mul(v11, sign(o, 11)));
    v128.store(p + <usize>o * step, acc);
  }
}

/**
 * Rotates `rows` rows of n floats (row stride ldx) in place: x <- (x * d) @ H_n / sqrt(n).
 * n must be 2^k or 12 * 2^k (the host checks). Rows are independent: threads may split them. For
 * n = 12 and 24 (segments shorter than a vector) the segments are padded in a copy at `scratch`
 * (48 * 4 floats of the caller's, per thread); other sizes do not touch it.
 */
export function hadamard_rows_f32(x: usize, ldx: i32, rows: i32, n: i32, d: usize, scratch: usize): void {
  const m = (n & (n - 1)) == 0 ? 1 : 12;   // number of segments
  const len = n / m;
  const norm = <f32>(1.0 / Math.sqrt(<f64>n));
  for (let t = 0; t < rows; t++) {
    const xr = x + ((<usize>t * <usize>ldx) << 2);
    scale_row(xr, n, d, 1);
    for (let s = 0; s < m; s++) fwht(xr + ((<usize>(s * len)) << 2), len);
    if (m == 12) {
      if (len % 4 == 0) {
        for (let j = 0; j < len; j += 4) mix12(xr, len, j);
      } else {
        // Segments of 1 or 2: spread them to 4 floats each in scratch, mix there, copy back.
        for (let s = 0; s < 12; s++) {
          v128.store(scratch + (<usize>s << 4), f32x4.splat(0));
          memory.copy(scratch + (<usize>s << 4), xr + (<usize>(s * len) << 2), <usize>len << 2);
        }
        mix12(scratch, 4, 0);
        for (let s = 0; s < 12; s++) memory.copy(xr + (<usize>(s * len) << 2), scratch + (<usize>s << 4), <usize>len << 2);
      }
    }
    scale_row(xr, n, 0, norm);
  }
}

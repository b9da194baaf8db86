/**
 * Dense linear algebra for the offline transforms: products with rotations, symmetric eigenvectors, and the
 * per-row / per-column scaling that folds a factor into a Linear weight.
 */

/**
 * A [n, k] · B [k, m] -> [n, m], row-major, in float64; each output is one sum over k in order, whatever the
 * blocking. Two rows by two columns at a time (B's columns read from a transposed copy, A as float64) keep
 * four sums in registers and each loaded value used twice: 2-4x the plain triple loop in V8, which the
 * rotations of a Vim-B (~100 G multiply-adds) need.
 */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, n: number, k: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  const rows = a instanceof Float64Array ? a : Float64Array.from(a), columns = transpose(b, k, m);
  for (let i = 0; i < n; i += 2) {
    const a0 = i * k, a1 = Math.min(i + 1, n - 1) * k;   // an odd last row is computed twice, stored once
    for (let j = 0; j < m; j += 2) {
      const b0 = j * k, b1 = Math.min(j + 1, m - 1) * k;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0;
      for (let p = 0; p < k; p++) {
        const x0 = rows[a0 + p], x1 = rows[a1 + p], y0 = columns[b0 + p], y1 = columns[b1 + p];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
      }
      out[i * m + j] = s00;
      if (j + 1 < m) out[i * m + j + 1] = s01;
      if (i + 1 < n) {
        out[(i + 1) * m + j] = s10;
        if (j + 1 < m) out[(i + 1) * m + j + 1] = s11;
      }
    }
  }
  return out;
}

/** Aᵀ of A [n, m]. */
export function transpose(a: ArrayLike<number>, n: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[j * n + i] = a[i * m + j];
  return out;
}

/**
 * Eigen-decomposition of a symmetric matrix A [n, n] by cyclic Jacobi rotations: A = V diag(λ) Vᵀ, the
 * eigenvectors in the columns of V, sorted by decreasing λ. Converges quadratically; n <= a few hundred here.
 */
export function symmetricEigen(matrix: ArrayLike<number>, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0, total = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        total += a[i * n + j] ** 2;
        if (i !== j) off += a[i * n + j] ** 2;
      }
    }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        // The rotation angle that zeroes a[p][q] (the numerically stable form of tan 2θ = 2 apq / (aqq − app)).
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y] - a[x * n + x]);
  const values = Float64Array.from(order, (i) => a[i * n + i]);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => { for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src]; });
  return { values, vectors };
}

/** max_j |W[j, k]| per input column k of W [n, K]. */
export function columnAbsMax(w: Float32Array, n: number, k: number): Float64Array {
  const out = new Float64Array(k);
  for (let j = 0; j < n; j++) for (let c = 0; c < k; c++) out[c] = Math.max(out[c], Math.abs(w[j * k + c]));
  return out;
}

/** W[j, k] *= s[k] for W [n, K] (a per-input-channel factor folded into a Linear). */
export function scaleColumns(w: Float32Array, n: number, k: number, s: ArrayLike<number>): void {
  for (let j = 0; j < n; j++) for (let c = 0; c < k; c++) w[j * k + c] *= s[c];
}

/** W[j, :] *= s[j] for the first s.length rows of W [n, K]. */
export function scaleRows(w: Float32Array, k: number, s: ArrayLike<number>): void {
  for (let j = 0; j < s.length; j++) for (let c = 0; c < k; c++) w[j * k + c] *= s[j];
}

/**
 * Hadamard rotations for the offline folds (QuaRot, MambaQuant; QUANT-METHODS.md §6, §9.1):
 * H_n for n = 2^k (Sylvester) and n = 12·2^k (H_12 ⊗ H_{2^k}, H_12 by Paley's construction for q = 11),
 * the same matrix assembly/hadamard.ts applies online, and the orthogonal Q = [K·] diag(signs)·H_n/√n.
 */
import { fail } from '../errors.js';
import { isHadamardSize } from '../model/contract.js';
import type { Random } from './random.js';
import { matmul } from './linalg.js';

/** H_12 = I + [[0, 1ᵀ], [−1, Q11]], Q11[i][j] = χ(j − i), χ the quadratic character mod 11 (squares 1, 3, 4, 5, 9). */
export function paley12(): Int8Array {
  const squares = new Set([1, 3, 4, 5, 9]);
  const chi = (a: number) => (a % 11 + 11) % 11 === 0 ? 0 : squares.has((a % 11 + 11) % 11) ? 1 : -1;
  const h = new Int8Array(144);
  for (let i = 0; i < 12; i++) {
    for (let j = 0; j < 12; j++) {
      const core = i === 0 ? (j === 0 ? 0 : 1) : j === 0 ? -1 : chi(j - i);
      h[i * 12 + j] = core + (i === j ? 1 : 0);
    }
  }
  return h;
}

/** Popcount parity of a & b: the sign of Sylvester's H_{2^k}[a][b] is (−1)^parity. */
function sylvesterSign(a: number, b: number): number {
  let v = a & b, parity = 0;
  while (v) { parity ^= v & 1; v >>>= 1; }
  return parity ? -1 : 1;
}

/** The ±1 matrix H_n [n, n] row-major: entry ((i, j), (i', j')) = H_12[i][i'] · H_{2^k}[j][j'], index i·2^k + j. */
export function hadamardMatrix(n: number): Float64Array {
  if (!isHadamardSize(n)) fail('BAD_ARGUMENT', `no Hadamard matrix of size ${n} (sizes 2^k and 12·2^k)`);
  const m = (n & (n - 1)) === 0 ? 1 : 12;
  const len = n / m;
  const h12 = m === 12 ? paley12() : Int8Array.of(1);
  const h = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      const i = Math.floor(a / len), j = a % len, i2 = Math.floor(b / len), j2 = b % len;
      h[a * n + b] = h12[i * m + i2] * sylvesterSign(j, j2);
    }
  }
  return h;
}

/** n random signs ±1 (QuaRot's "random Hadamard" S). */
export function randomSigns(n: number, random: Random): Float64Array {
  return Float64Array.from({ length: n }, () => (random.next() < 0.5 ? -1 : 1));
}

/**
 * Q = basis · diag(signs) · H_n / √n, [n, n] row-major; `basis` (e.g. the KLT eigenvectors in its columns)
 * defaults to the identity. Orthogonal when basis is.
 */
export function rotationMatrix(n: number, signs: Float64Array, basis?: Float64Array): Float64Array {
  const h = hadamardMatrix(n);
  const norm = 1 / Math.sqrt(n);
  const sh = new Float64Array(n * n);
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) sh[a * n + b] = signs[a] * h[a * n + b] * norm;
  return basis ? matmul(basis, sh, n, n, n) : sh;
}

/**
 * Rows of W [rows, n] ← W·diag(signs)·H_n/√n, in float64 then rounded once, without forming H_n: per row the
 * Sylvester butterfly along each of the n/len segments (len = 2^k), then H_12 across segments (n = 12·len),
 * as assembly/hadamard.ts applies it online. n·(log2 len + 12) operations a row against n² for the product
 * with rotationMatrix, whose values it gives up to float64 rounding.
 */
export function rotateRowsHadamard(w: Float32Array, rows: number, n: number, signs: Float64Array): void {
  if (!isHadamardSize(n)) fail('BAD_ARGUMENT', `no Hadamard matrix of size ${n} (sizes 2^k and 12·2^k)`);
  const segments = (n & (n - 1)) === 0 ? 1 : 12, len = n / segments;
  const h12 = segments === 12 ? paley12() : Int8Array.of(1);
  const norm = 1 / Math.sqrt(n);
  const x = new Float64Array(n), mixed = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const row = w.subarray(r * n, (r + 1) * n);
    for (let a = 0; a < n; a++) x[a] = row[a] * signs[a];
    for (let s0 = 0; s0 < n; s0 += len) {
      for (let h = 1; h < len; h <<= 1) {
        for (let i = s0; i < s0 + len; i += h << 1) {
          for (let j = i; j < i + h; j++) {
            const u = x[j], v = x[j + h];
            x[j] = u + v;
            x[j + h] = u - v;
          }
        }
      }
    }
    for (let o = 0; o < segments; o++) {
      for (let j = 0; j < len; j++) {
        let sum = 0;
        for (let i = 0; i < segments; i++) sum += h12[i * segments + o] * x[i * len + j];
        mixed[o * len + j] = sum;
      }
    }
    for (let a = 0; a < n; a++) row[a] = mixed[a] * norm;
  }
}

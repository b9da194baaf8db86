/** The quantizer's one source of randomness (calibration sample, Hadamard signs): seeded, so runs repeat. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

/** mulberry32: small, fast, and identical on every JavaScript engine. */
export function seededRandom(seed: number): Random {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n) };
}

/** `count` distinct indices of 0..n-1 in a seeded random order (partial Fisher-Yates). */
export function sampleIndices(n: number, count: number, random: Random): number[] {
  const index = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + random.int(n - i);
    [index[i], index[j]] = [index[j], index[i]];
  }
  return index.slice(0, count);
}

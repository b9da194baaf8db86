// Run by test/relaxed-simd.test.ts under Deno (whose V8 runs relaxed SIMD correctly; Node 20's does not):
//   deno run --allow-read relaxed-check.mjs <root> <model.vimq>
// 1. gemm_qs4 of build/vimedge.relaxed.wasm against build/vimedge.wasm on seeded random int4 weights and
//    int8 activations, odd shapes included: the outputs must be the same floats, bit for bit.
// 2. The W4A8 model classified through the Deno bundle with each wasm: every score identical.
// Prints one JSON line: { gemmCases, gemmMismatches, scoresIdentical, scores }.
const [root, modelFile] = Deno.args;
const read = (f) => Deno.readFileSync(`${root}/${f}`);

let seed = 12345;
const uniform = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);

async function kernels(file) {
  const { instance } = await WebAssembly.instantiate(read(file), {});
  return instance.exports;
}

const portable = await kernels('build/vimedge.wasm');
const relaxed = await kernels('build/vimedge.relaxed.wasm');
let cases = 0, mismatches = 0;
for (const [m, k, n] of [[1, 13, 5], [50, 37, 34], [4, 1, 3], [17, 192, 44], [50, 384, 192], [197, 384, 12], [6, 70, 9]]) {
  const kp = Math.ceil(k / 64) * 64, groups = kp / 64;
  const codes = Array.from({ length: n * kp }, (_, i) => (i % kp < k ? Math.floor(uniform() * 16) - 8 : 0));
  // q4g64 packing (docs/FORMAT.md): panel p, block c: byte 4r + i = w[4p+r, 8c+i] | w[4p+r, 8c+4+i] << 4
  const panels = Math.ceil(n / 4), packed = new Uint8Array(panels * kp * 2);
  for (let j = 0; j < n; j++) {
    for (let kk = 0; kk < kp; kk++) {
      const c = kk >> 3, i = kk & 3, high = (kk & 7) >= 4;
      const at = (j >> 2) * kp * 2 + c * 16 + (j & 3) * 4 + i;
      packed[at] |= (codes[j * kp + kk] & 15) << (high ? 4 : 0);
    }
  }
  const qx = Int8Array.from({ length: m * kp }, (_, i) => (i % kp < k ? Math.floor(uniform() * 256) - 128 : 0));
  const sw = Float32Array.from({ length: n * groups }, () => 0.001 + uniform() * 0.01);
  const wsum = Int32Array.from({ length: n * groups }, (_, i) => {
    const j = Math.floor(i / groups), g = i % groups;
    let s = 0;
    for (let kk = g * 64; kk < g * 64 + 64; kk++) s += codes[j * kp + kk];
    return s;
  });
  const sx = Float32Array.from({ length: m }, () => 0.01 + uniform() * 0.1);
  const zx = Int32Array.from({ length: m }, () => Math.floor(uniform() * 40) - 20);
  const bias = Float32Array.from({ length: n }, () => uniform() - 0.5);
  const outputs = [];
  for (const kx of [portable, relaxed]) {
    let top = (kx.heap_base() + 63) & ~63;
    const put = (arr) => {
      const at = top;
      top = Math.ceil((top + arr.byteLength + 64) / 64) * 64;
      const need = top + 65536 - kx.memory.buffer.byteLength;
      if (need > 0) kx.memory.grow(Math.ceil(need / 65536));
      new Uint8Array(kx.memory.buffer, at, arr.byteLength).set(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
      return at;
    };
    const args = [put(qx), kp, m, k, put(packed), n, put(sw), put(wsum), put(sx), put(zx), put(bias)];
    const c = put(new Float32Array(m * n)), scratch = put(new Int32Array(m * groups));
    kx.gemm_qs4(...args, c, n, scratch);
    outputs.push(new Uint32Array(kx.memory.buffer, c, m * n).slice());
  }
  cases++;
  if (outputs[0].some((v, i) => v !== outputs[1][i])) mismatches++;
}

const { loadClassifier } = await import(`${root}/dist/browser/vimedge.js`);
const image = { width: 28, height: 28, channels: 1, data: Uint8Array.from({ length: 784 }, () => Math.floor(uniform() * 256)) };
const scores = [];
for (const wasm of ['build/vimedge.wasm', 'build/vimedge.relaxed.wasm']) {
  const classifier = await loadClassifier(Deno.readFileSync(modelFile), { wasm: read(wasm) });
  scores.push((await classifier.classify(image, { topK: 1000 })).map((p) => `${p.index}:${p.score}`).join(','));
  classifier.dispose();
}
console.log(JSON.stringify({ gemmCases: cases, gemmMismatches: mismatches, scoresIdentical: scores[0] === scores[1], scores: scores[0] }));

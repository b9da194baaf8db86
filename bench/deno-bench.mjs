// Run under Deno by bench/speed.ts: single-image latency of a model through the Deno bundle with a given
// kernel build (portable or relaxed SIMD), as `vimedge bench` measures it on Node.
//   deno run --allow-read bench/deno-bench.mjs <root> <model.vimq> <kernels.wasm> <runs>
// Prints one JSON line: { median_ms, p90_ms, cold_start_ms, runs }.
const [root, modelFile, wasmFile, runsArg] = Deno.args;
const runs = Number(runsArg);
const started = performance.now();
const { loadClassifier } = await import(`${root}/dist/browser/vimedge.js`);
const classifier = await loadClassifier(Deno.readFileSync(modelFile), { wasm: Deno.readFileSync(wasmFile) });
const p = classifier.info.preprocess;
const image = { width: p.resize, height: p.resize, channels: p.channels,
  data: Uint8Array.from({ length: p.channels * p.resize * p.resize }, (_, i) => 128 + 127 * Math.sin(i * 12.9898)) };
await classifier.logits(image);
const coldStart = performance.now() - started;
for (let i = 0; i < 5; i++) await classifier.logits(image);
const times = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  await classifier.logits(image);
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
console.log(JSON.stringify({ median_ms: at(0.5), p90_ms: at(0.9), cold_start_ms: coldStart, runs }));
classifier.dispose();

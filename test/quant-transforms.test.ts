// Every quantization method's transforms are function-preserving: the transformed but unquantized model,
// run on the fp32 kernels, matches the original (the small-gray and small fixtures, and the Vim-Tiny shape).
//
// Tolerance: 1e-5 relative on the logits (max |diff| / max |ref|). The transforms change only the order and
// grouping of fp32 roundings (weights recomputed in float64 and rounded once, products summed in another
// basis, 1/s and s factors on both sides); measured errors are 2e-7..7e-7. A wrong fold (a missing bias, a
// transposed rotation, a rotation on one side only) gives errors of order 1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { relErr } from './helpers/kernels.js';
import { calibrationSet, inputs, fixtureModel, SMALL_GRAY, SMALL_RGB } from './helpers/quant.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';
import { instantiateFloat } from '../src/model/model-file.js';
import { cloneModel, tensor } from '../src/convert/float-model.js';
import { METHOD_NAMES } from '../src/model/contract.js';
import { quantizeModel, transformModel } from '../src/quant/quantize-model.js';
import { golden, TINY } from './helpers/golden.js';
import { checkpointModel } from '../src/convert/checkpoint.js';
import { calibrate } from '../src/quant/calibrate.js';
import { foldNorms } from '../src/quant/transforms/fold-norms.js';
import { kltRotation, rotateResidual } from '../src/quant/transforms/rotations.js';
import { randomSigns, rotateRowsHadamard, rotationMatrix } from '../src/quant/hadamard.js';
import { seededRandom } from '../src/quant/random.js';
import { matmul } from '../src/quant/linalg.js';

const TOL = 1e-5;

for (const dir of [SMALL_GRAY, SMALL_RGB]) {
  for (const method of METHOD_NAMES) {
    test(`${method} on ${dir}: the transformed, unquantized model matches the original within ${TOL}`, async () => {
      const wasm = await readKernelWasm();
      const source = await fixtureModel(dir);
      const { transformed, recipe } = await quantizeModel(source, calibrationSet(16, 0, dir), wasm, { method, bits: 'w8a8', seed: 3 });
      const original = await instantiateFloat(source, wasm);
      const model = await instantiateFloat(transformed, wasm);
      for (const x of inputs(8, 1, dir)) {
        const e = relErr(model.forward(x), original.forward(x));
        assert.ok(e <= TOL, `${method} [${recipe.transforms}]: logits rel err ${e}`);
      }
    });
  }
}

// The small fixtures have power-of-two widths only; the Vim-Ti shape (D = 192 = 12·16, E = 384 = 12·32,
// R = 12) exercises the H_12 ⊗ H_{2^k} rotations, offline and online.
for (const method of ['quarot', 'mambaquant']) {
  test(`${method} on the Vim-Tiny shape (12·2^k Hadamard sizes): transformed model within ${TOL}`, async () => {
    const g = golden(TINY);
    assert.ok(g, `${TINY} missing: run scripts/make-fixtures.sh`);
    const wasm = await readKernelWasm();
    const source = checkpointModel(g!.bytes('model.pth'), 'model.pth', { stride: Number(g!.manifest.config.stride) });
    const xs = g!.manifest.inputs.map((x) => g!.f32(x.file));
    const images = { name: 'tiny inputs', count: xs.length, input: async (i: number) => xs[i] };
    const { model } = await transformModel(source, images, wasm, { method, seed: 5, activationBits: 8 });
    const original = await instantiateFloat(source, wasm), transformed = await instantiateFloat(model, wasm);
    for (const x of xs) {
      const e = relErr(transformed.forward(x), original.forward(x));
      assert.ok(e <= TOL, `${method}: logits rel err ${e}`);
    }
  });
}

// R2 is folded with the fast transform, not the dense product; both are float64 rounded once to fp32, in
// different summation orders, so they may differ by float64 rounding (~1e-16 relative) in rare last bits of
// fp32; measured identical on every size here. Bound: 1e-7 relative to the row's norm. A wrong sign, segment
// order or normalisation gives O(1) differences.
test('rotateRowsHadamard is the product with rotationMatrix, at sizes 2^k and 12·2^k', () => {
  for (const n of [2, 16, 12, 48, 384, 1536]) {
    const rows = 5, random = seededRandom(n);
    const w = Float32Array.from({ length: rows * n }, () => random.next() - 0.5);
    const signs = randomSigns(n, random);
    const dense = Float32Array.from(matmul(w, rotationMatrix(n, signs), rows, n, n));
    const fast = w.slice();
    rotateRowsHadamard(fast, rows, n, signs);
    assert.ok(relErr(fast, dense) <= 1e-7, `n = ${n}: relative error ${relErr(fast, dense)}`);
  }
});

test('mambaquant adds the scaled SiLU gate, the online Hadamard and the dt bias; rtn adds nothing', async () => {
  const wasm = await readKernelWasm();
  const source = await fixtureModel();
  const mq = await quantizeModel(source, calibrationSet(8), wasm, { method: 'mambaquant', bits: 'w8a8', seed: 0 });
  assert.equal([...mq.transformed.extras].sort(), ['gate_scale', 'out_proj.input_signs', 'x_proj.bias']);
  assert.equal(mq.recipe.transforms, ['fold-norms', 'dt-shift', 'smooth-fused-s2', 'r1-klt', 'r2-online-hadamard', 'r5-klt']);
  const rtn = await quantizeModel(source, calibrationSet(8), wasm, { method: 'rtn', bits: 'w8a8', seed: 0 });
  assert.is(rtn.transformed.extras.size, 0);
});

test('KLT-enhanced R1 equalises the channel variances of the in_proj input (Hadamard alone does not)', async () => {
  // cov(X·K·H/√D) = Hᵀ·Λ·H/D has every diagonal entry equal to mean(λ): check on the data the KLT came from.
  const wasm = await readKernelWasm();
  const images = calibrationSet(32);
  const m = await fixtureModel();
  foldNorms(m);
  const site = 'layers.2.mixer.in_proj';
  const before = (await calibrate(await instantiateFloat(m, wasm), images, (s) => (s === site ? { covariance: true } : undefined),
    { seed: 0, label: 'test' })).get(site)!;
  const D = m.metadata.config.embedDim;
  const spread = (cov: Float64Array) => {
    const diag = Array.from({ length: D }, (_, i) => cov[i * D + i]);
    return Math.max(...diag) / Math.min(...diag);
  };
  const klt = cloneModel(m);
  rotateResidual(klt, kltRotation(before.covariance(), D, randomSigns(D, seededRandom(1))));
  const after = (await calibrate(await instantiateFloat(klt, wasm), images, (s) => (s === site ? { covariance: true } : undefined),
    { seed: 0, label: 'test' })).get(site)!;
  assert.ok(spread(before.covariance()) > 2, `the fixture's channels already have equal variance (${spread(before.covariance())})`);
  assert.ok(spread(after.covariance()) < 1 + 1e-6, `variance spread after KLT: ${spread(after.covariance())}`);
});

test('R1 keeps the norms folded and its rotation orthogonal', async () => {
  const m = await fixtureModel();
  foldNorms(m);
  assert.ok(tensor(m, 'layers.0.norm.weight').every((v) => v === 1));
  const D = m.metadata.config.embedDim;
  const cov = new Float64Array(D * D).map((_, i) => (i % (D + 1) === 0 ? 1 + (i % 7) : 0.1));
  const q = kltRotation(cov, D, randomSigns(D, seededRandom(2)));
  const qtq = matmul(Array.from({ length: D * D }, (_, i) => q[(i % D) * D + Math.floor(i / D)]), q, D, D, D);
  for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) assert.ok(Math.abs(qtq[i * D + j] - (i === j ? 1 : 0)) < 1e-12);
});

test.run();

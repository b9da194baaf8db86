// The quantization pipeline end to end on the small-gray fixture: quantized files load and run on the
// integer kernels, stay close to the fp32 model, carry their recipe, repeat exactly for a seed, and refuse
// bad requests with a VimedgeError.
//
// Closeness: the fixture has random weights and N(0, 1) inputs, so no accuracy is measured here (the
// Fashion-MNIST table does that); W8A8 logits must stay within 10% relative of fp32 and agree on the top-1
// of the 8 test inputs (measured: 2-5%, 8/8), W4A8 within 30%; a broken layout, scale or zero point gives
// errors of order 1 and random top-1s.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from './helpers/rejects.js';
import { relErr } from './helpers/kernels.js';
import { argmax, calibrationSet, inputs, fixtureModel } from './helpers/quant.js';
import { readKernelWasm } from '../src/hosts/node-wasm.js';
import { instantiateFloat, loadModel, readFloatModel } from '../src/model/model-file.js';
import { readVimq } from '../src/formats/vimq.js';
import { quantizeModel, type QuantizeOptions } from '../src/quant/quantize-model.js';

async function quantized(options: Partial<QuantizeOptions>) {
  const wasm = await readKernelWasm();
  const source = await fixtureModel();
  const result = await quantizeModel(source, calibrationSet(24), wasm, { method: 'rtn', bits: 'w8a8', seed: 0, ...options });
  const { model, metadata } = await loadModel(result.file, 'q.vimq', wasm);
  return { result, model, metadata, original: await instantiateFloat(source, wasm) };
}

async function closeness(options: Partial<QuantizeOptions>) {
  const { model, original } = await quantized(options);
  let err = 0, agree = 0;
  const xs = inputs(8, 7);
  for (const x of xs) {
    const want = original.forward(x), got = model.forward(x);
    err = Math.max(err, relErr(got, want));
    if (argmax(got) === argmax(want)) agree++;
  }
  return { err, agree, total: xs.length };
}

for (const method of ['rtn', 'percentile', 'smoothquant', 'osplus', 'quarot', 'mambaquant']) {
  test(`${method} W8A8 runs on the int8 kernels within 10% of fp32, same top-1`, async () => {
    const { err, agree, total } = await closeness({ method });
    assert.ok(err <= 0.1, `rel err ${err}`);
    assert.is(agree, total);
  });
}

for (const activations of ['token', 'dynamic'] as const) {
  test(`mambaquant W8A8 with ${activations} activation ranges runs within 10% of fp32`, async () => {
    const { err, agree, total } = await closeness({ method: 'mambaquant', granularity: activations });
    assert.ok(err <= 0.1, `rel err ${err}`);
    assert.is(agree, total);
  });
}

test('W4A8: int4 groups of 64 (dt_proj int8), smaller file, within 30% of fp32', async () => {
  const { result, metadata } = await quantized({ method: 'mambaquant', bits: 'w4a8' });
  const w8 = await quantized({ method: 'mambaquant', bits: 'w8a8' });
  const layout = (name: string) => metadata.tensors.find((t) => t.name === name)!.layout;
  assert.is(layout('layers.0.mixer.in_proj.weight'), 'q4g64');
  assert.is(layout('layers.0.mixer.out_proj.weight'), 'q4g64');
  assert.is(layout('layers.0.mixer.x_proj_b.weight'), 'q4g64');
  assert.is(layout('layers.0.mixer.dt_proj.weight'), 'q8');
  assert.is(layout('head.weight'), 'kn8');
  assert.is(metadata.weights, 'w4a8');
  assert.equal(result.recipe.weights, { granularity: 'group64', range: 'mse' });
  assert.ok(result.file.length < w8.result.file.length);
  const { err } = await closeness({ method: 'mambaquant', bits: 'w4a8' });
  assert.ok(err <= 0.3, `rel err ${err}`);
});

test('the recipe is stored in metadata.quantization; simulated widths say so', async () => {
  const { metadata } = await quantized({ method: 'quarot', bits: 'w8a8', seed: 4 });
  assert.equal(metadata.quantization, {
    method: 'quarot', bits: 'w8a8', weightBits: 8, activationBits: 8, simulated: false,
    weights: { granularity: 'channel', range: 'minmax' },
    activations: { granularity: 'tensor', dynamic: false, range: 'minmax' },
    transforms: ['fold-norms', 'r1-hadamard', 'r5-hadamard', 'r2-online-hadamard'],
    calibration: { set: 'synthetic:0', size: 24, seed: 4 },
  });
  const sim = await quantized({ method: 'rtn', bits: 'w4a4' });
  assert.is(sim.metadata.quantization!.simulated, true);
  assert.is(sim.metadata.quantization!.activationBits, 4);
  assert.is(sim.metadata.weights, 'w4a4');
  const w6 = await quantized({ method: 'rtn', bits: 'w6a6' });
  const w8 = await closeness({ method: 'rtn', bits: 'w8a8' });
  const w6err = await closeness({ method: 'rtn', bits: 'w6a6' });
  assert.is(w6.metadata.weights, 'w6a6');
  assert.ok(w6err.err > w8.err, `6-bit codes (${w6err.err}) should lose more than 8-bit (${w8.err})`);
});

test('a seed gives the same bytes; another seed other Hadamard signs', async () => {
  const a = await quantized({ method: 'quarot', seed: 1 });
  const b = await quantized({ method: 'quarot', seed: 1 });
  const c = await quantized({ method: 'quarot', seed: 2 });
  assert.equal(a.result.file, b.result.file);
  assert.not.equal(a.result.file, c.result.file);
});

test('bad requests: unknown method or bit width, an already-quantized model', async () => {
  await rejects(() => quantized({ method: 'gptq' }), 'BAD_ARGUMENT', /unknown quantization method 'gptq'.*mambaquant/);
  await rejects(() => quantized({ bits: 'w2a2' }), 'BAD_ARGUMENT', /unknown bit width 'w2a2'/);
  const { result } = await quantized({});
  await rejects(() => readFloatModel(result.file, 'q.vimq'), 'BAD_ARGUMENT', /q\.vimq is already quantized \(rtn w8a8\)/);
  const { metadata, data } = await readVimq(result.file, 'q.vimq');
  assert.ok(data.length > 0 && metadata.tensors.some((t) => t.dtype === 'i8'));
});

test.run();

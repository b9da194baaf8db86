// The shipped default model (models/vim_fmnist.pth, built into models/vim-fmnist.vimq by `npm run build`)
// against PyTorch's own evaluation of the same checkpoint (training/logs/test_eval.json: the predicted class
// of each Fashion-MNIST test image from an fp32 evaluation on the GPU, written by training/train.py).
// The runtime must agree image by image; the full 10,000 run is `vimedge eval` (models/README.md), here the
// first 1,000 images keep CI short. Allowed: at most 1 disagreement in 1,000 (the issue allows 5 in
// 10,000): a disagreement can only come from an image whose top two logits are within fp32 noise.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { loadClassifier } from '../src/index.js';
import { openDataset } from '../src/datasets/open.js';
import { evaluate } from '../src/eval/evaluate.js';
import { readPth } from '../src/formats/pth.js';
import { inferConfig } from '../src/model/infer-config.js';
import { loadFashionMnist } from '../src/datasets/fashion-mnist.js';

const IMAGES = 1000;
const pytorch = JSON.parse(readFileSync('training/logs/test_eval.json', 'utf8'));

test('the shipped checkpoint is read by the .pth reader and has the documented shape', () => {
  const config = inferConfig(readPth(new Uint8Array(readFileSync('models/vim_fmnist.pth')), 'vim_fmnist.pth'));
  assert.equal([config.embedDim, config.depth, config.channels, config.imageSize, config.patchSize, config.numTokens, config.clsIndex, config.numClasses],
    [192, 24, 1, 28, 4, 50, 24, 10]);
});

test(`the default model agrees with PyTorch on the first ${IMAGES} test images`, async () => {
  const classifier = await loadClassifier();
  assert.equal(classifier.info.preprocess.mean, [pytorch.mean]);
  assert.equal(classifier.info.preprocess.std, [pytorch.std]);
  const result = await evaluate(classifier, await openDataset('fashion-mnist', 'test'), IMAGES);
  const differ = result.predictions.filter((p, i) => p !== pytorch.predictions[i]).length;
  assert.ok(differ <= 1, `${differ} of ${IMAGES} predictions differ from PyTorch`);
  const truth = loadFashionMnist('test').labels;
  const pytorchTop1 = pytorch.predictions.slice(0, IMAGES).filter((p: number, i: number) => p === truth[i]).length / IMAGES;
  assert.ok(Math.abs(result.top1 - pytorchTop1) <= 1 / IMAGES, `top-1 ${result.top1} vs PyTorch ${pytorchTop1}`);
});

test.run();

// idx reader (src/datasets/idx.ts) and Fashion-MNIST loader (src/datasets/fashion-mnist.ts): the real Debian
// files (counts, class histograms, pixels checked against Python's reading of the same files) and damaged files
// (truncated, wrong magic, bad CRC, wrong sizes), which must all be BAD_DATASET errors naming the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'fflate';
import { crc32, gunzipBounded, IDX_IMAGES, IDX_LABELS, parseIdx, readIdx } from '../src/datasets/idx.js';
import { FASHION_MNIST_DIR, FASHION_MNIST_LABELS, loadFashionMnist } from '../src/datasets/fashion-mnist.js';
import { idxFile } from './helpers/idx.js';
import { rejects } from './helpers/rejects.js';

const sum = (a: Uint8Array) => a.reduce((s, v) => s + v, 0);

// Values read with Python (training/data.py: gzip + numpy) from the same files.
const PY = {
  train: {
    count: 60000, firstLabels: [9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9], totalSum: 3431114169,
    images: [
      { i: 0, sum: 76247, row14: [0, 0, 237, 226, 217, 223, 222, 219] },
      { i: 1, sum: 84598, row14: [205, 202, 205, 206, 204, 205, 207, 204] },
      { i: 59999, sum: 16684, row14: [34, 0, 3, 3, 0, 3, 0, 24] },
    ],
  },
  test: {
    count: 10000, firstLabels: [9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5], totalSum: 573469082,
    images: [
      { i: 0, sum: 33456, row14: [0, 0, 98, 136, 110, 109, 110, 162] },
      { i: 1, sum: 100994, row14: [233, 233, 235, 236, 234, 234, 234, 232] },
      { i: 9999, sum: 24390, row14: [69, 128, 100, 120, 132, 123, 135, 171] },
    ],
  },
} as const;

for (const split of ['train', 'test'] as const) {
  test(`real Fashion-MNIST ${split}: counts, class histogram, pixels match Python`, () => {
    const set = loadFashionMnist(split);
    const want = PY[split];
    assert.is(set.count, want.count);
    assert.is(set.rows, 28);
    assert.is(set.cols, 28);
    assert.is(set.images.length, want.count * 28 * 28);
    assert.is(set.labels.length, want.count);
    assert.equal(set.labelNames, [...FASHION_MNIST_LABELS]);
    const hist = new Array(10).fill(0);
    for (const l of set.labels) hist[l]++;
    assert.equal(hist, new Array(10).fill(want.count / 10));
    assert.equal([...set.labels.subarray(0, 12)], [...want.firstLabels]);
    assert.is(sum(set.images), want.totalSum);
    for (const im of want.images) {
      const px = set.images.subarray(im.i * 784, (im.i + 1) * 784);
      assert.is(sum(px), im.sum, `image ${im.i} sum`);
      assert.equal([...px.subarray(14 * 28 + 10, 14 * 28 + 18)], [...im.row14], `image ${im.i} row 14`);
    }
  });
}

test('labels file agrees with models/fashion-mnist-labels.txt', () => {
  const text = readFileSync(new URL('../models/fashion-mnist-labels.txt', import.meta.url), 'utf8');
  assert.equal(text.trimEnd().split('\n'), [...FASHION_MNIST_LABELS]);
});

test('parseIdx: shapes, plain and gzip', () => {
  const raw = idxFile(IDX_IMAGES, [2, 2, 3], [...Array(12).keys()]);
  const a = parseIdx(raw, 'mem');
  assert.equal(a.dims, [2, 2, 3]);
  assert.is(a.magic, IDX_IMAGES);
  assert.is(a.data[11], 11);
  const b = readIdx(gzipSync(raw), 'mem.gz', IDX_IMAGES);
  assert.equal([...b.data], [...a.data]);
  const l = readIdx(idxFile(IDX_LABELS, [3], [7, 8, 9]), 'labels', IDX_LABELS);
  assert.equal([...l.data], [7, 8, 9]);
});

test('crc32 matches the gzip trailer of the real files', () => {
  const gz = readFileSync(join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz'));
  const out = gunzipBounded(gz, 'labels');
  const view = new DataView(gz.buffer, gz.byteOffset, gz.byteLength);
  assert.is(crc32(out), view.getUint32(gz.length - 8, true));
  assert.is(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);   // the standard check value
});

test('wrong magic, element type, sizes, trailing bytes: BAD_DATASET', () => {
  const labels = idxFile(IDX_LABELS, [3], [1, 2, 3]);
  rejects(() => parseIdx(labels, 'l.idx', IDX_IMAGES), 'BAD_DATASET', /^l\.idx: magic 0x00000801, expected 0x00000803/);
  rejects(() => parseIdx(idxFile(0x0000080a, [3], [1, 2, 3]), 'x', IDX_LABELS), 'BAD_DATASET', /^x: magic 0x0000080a/);
  rejects(() => parseIdx(idxFile(0x00000d01, [3], [1, 2, 3]), 'f', IDX_LABELS), 'BAD_DATASET', /element type 0xd/);
  rejects(() => parseIdx(new Uint8Array([0x50, 0x4b, 3, 4, 0, 0]), 'zip', IDX_LABELS), 'BAD_DATASET', /not an idx file/);
  rejects(() => parseIdx(idxFile(IDX_LABELS, [4], [1, 2, 3]), 'short', IDX_LABELS), 'BAD_DATASET', /3 data bytes .* need 4 \(truncated/);
  rejects(() => parseIdx(idxFile(IDX_LABELS, [2], [1, 2, 3]), 'long', IDX_LABELS), 'BAD_DATASET', /trailing bytes/);
  rejects(() => parseIdx(new Uint8Array([0, 0, 8, 3, 0, 0]), 'hdr', IDX_IMAGES), 'BAD_DATASET', /truncated idx header/);
  rejects(() => parseIdx(new Uint8Array(2), 'tiny'), 'BAD_DATASET', /too short/);
  rejects(() => parseIdx(idxFile(IDX_IMAGES, [60000, 60000, 28], []), 'huge', IDX_IMAGES), 'BAD_DATASET', /too large/);
});

test('truncated or damaged gzip: BAD_DATASET, no huge allocation', () => {
  const real = readFileSync(join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz'));
  for (const cut of [10, 100, 1000, real.length - 1, real.length - 8]) {
    rejects(() => readIdx(real.subarray(0, cut), 'cut.gz', IDX_LABELS), 'BAD_DATASET', /^cut\.gz: /);
  }
  const flipped = Uint8Array.from(real);
  flipped[real.length >> 1] ^= 0x55;                       // a byte inside the deflate stream
  rejects(() => readIdx(flipped, 'flip.gz', IDX_LABELS), 'BAD_DATASET', /^flip\.gz: (bad gzip data|gzip CRC-32 mismatch|.*trailer)/);
  const bigTrailer = Uint8Array.from(real);
  bigTrailer.set([0xff, 0xff, 0xff, 0x7f], real.length - 4); // ISIZE ~2 GiB
  rejects(() => readIdx(bigTrailer, 'big.gz', IDX_LABELS), 'BAD_DATASET', /over the \d+-byte limit/);
  const badCrc = Uint8Array.from(real);
  badCrc[real.length - 8] ^= 1;
  rejects(() => readIdx(badCrc, 'crc.gz', IDX_LABELS), 'BAD_DATASET', /CRC-32 mismatch/);
});

test('loadFashionMnist: missing folder or file, truncated file, mismatched counts', () => {
  rejects(() => loadFashionMnist('test', '/nonexistent/fmnist'), 'BAD_DATASET', /apt-get install dataset-fashion-mnist/);
  const dir = mkdtempSync(join(tmpdir(), 'vimedge-idx-'));
  try {
    rejects(() => loadFashionMnist('test', dir), 'BAD_DATASET', /t10k-images-idx3-ubyte\.gz: not found/);
    const img = join(dir, 't10k-images-idx3-ubyte.gz');
    const lbl = join(dir, 't10k-labels-idx1-ubyte.gz');
    copyFileSync(join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz'), lbl);
    const realImages = readFileSync(join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
    writeFileSync(img, realImages.subarray(0, realImages.length >> 1));
    rejects(() => loadFashionMnist('test', dir), 'BAD_DATASET', /t10k-images-idx3-ubyte\.gz: /);
    writeFileSync(img, gzipSync(idxFile(IDX_IMAGES, [2, 28, 28], new Array(2 * 784).fill(1))));
    rejects(() => loadFashionMnist('test', dir), 'BAD_DATASET', /10000 labels for 2 images/);
    // labels and images swapped: the magic check names the file
    copyFileSync(join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz'), img);
    rejects(() => loadFashionMnist('test', dir), 'BAD_DATASET', /images-idx3-ubyte\.gz: magic 0x00000801, expected 0x00000803/);
    writeFileSync(img, gzipSync(idxFile(IDX_IMAGES, [1, 28, 28], new Array(784).fill(3))));
    writeFileSync(lbl, gzipSync(idxFile(IDX_LABELS, [1], [10])));
    rejects(() => loadFashionMnist('test', dir), 'BAD_DATASET', /label 10 at index 0/);
    writeFileSync(lbl, gzipSync(idxFile(IDX_LABELS, [1], [4])));
    const ok = loadFashionMnist('test', dir);
    assert.is(ok.count, 1);
    assert.is(ok.labels[0], 4);
    assert.is(ok.images[783], 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

/**
 * Fashion-MNIST from the four idx .gz files of the Debian package `dataset-fashion-mnist` (or the same files in
 * another folder). Node only (reads files); the parsing itself is in idx.ts.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../errors.js';
import { IDX_IMAGES, IDX_LABELS, readIdx } from './idx.js';

/** Where `apt-get install dataset-fashion-mnist` puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Class names in label-index order (also models/fashion-mnist-labels.txt). */
export const FASHION_MNIST_LABELS: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

export type FashionMnistSplit = 'train' | 'test';

const FILES: Record<FashionMnistSplit, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' },
  test: { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' },
};

export interface FashionMnist {
  /** count * rows * cols greyscale pixels 0..255, image after image, row-major (file order). */
  images: Uint8Array;
  /** count labels 0..9, index into labelNames. */
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
  labelNames: string[];
}

function readFile(path: string, dir: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const hint = dir === FASHION_MNIST_DIR
        ? 'apt-get install dataset-fashion-mnist'
        : `copy the four Fashion-MNIST .gz files there, or apt-get install dataset-fashion-mnist and use ${FASHION_MNIST_DIR}`;
      return fail('BAD_DATASET', `${path}: not found (${hint})`);
    }
    return fail('BAD_DATASET', `${path}: cannot read (${code ?? (err as Error).message})`);
  }
}

/** Load one split; validates both files and that they agree. */
export function loadFashionMnist(split: FashionMnistSplit, dir: string = FASHION_MNIST_DIR): FashionMnist {
  if (split !== 'train' && split !== 'test') fail('BAD_ARGUMENT', `Fashion-MNIST split '${split}': use train or test`);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) fail('BAD_DATASET', `${dir}: no Fashion-MNIST folder here (apt-get install dataset-fashion-mnist)`);
  const imagesFile = join(dir, FILES[split].images);
  const labelsFile = join(dir, FILES[split].labels);
  const images = readIdx(readFile(imagesFile, dir), imagesFile, IDX_IMAGES);
  const labels = readIdx(readFile(labelsFile, dir), labelsFile, IDX_LABELS);
  if (images.dims.length !== 3) fail('BAD_DATASET', `${imagesFile}: ${images.dims.length} dims, expected 3`);
  if (labels.dims.length !== 1) fail('BAD_DATASET', `${labelsFile}: ${labels.dims.length} dims, expected 1`);
  const [count, rows, cols] = images.dims;
  if (rows !== 28 || cols !== 28) fail('BAD_DATASET', `${imagesFile}: ${rows}x${cols} images, Fashion-MNIST has 28x28`);
  if (labels.dims[0] !== count) {
    fail('BAD_DATASET', `${labelsFile}: ${labels.dims[0]} labels for ${count} images in ${imagesFile}`);
  }
  const n = FASHION_MNIST_LABELS.length;
  for (let i = 0; i < count; i++) {
    if (labels.data[i] >= n) fail('BAD_DATASET', `${labelsFile}: label ${labels.data[i]} at index ${i}, expected 0..${n - 1}`);
  }
  return { images: images.data, labels: labels.data, count, rows, cols, labelNames: [...FASHION_MNIST_LABELS] };
}

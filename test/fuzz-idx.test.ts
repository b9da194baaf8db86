// Property-based fuzzing of the idx reader (src/datasets/idx.ts) and of loading a Fashion-MNIST split from
// damaged files: the idx header (element type, dimension count, sizes), the gzip container (header flags, the
// deflate stream, the CRC-32 and ISIZE trailer) and the bytes. Sources: Debian's Fashion-MNIST test labels
// (the real .gz file) and a small images file cut from the real test images. Property: a parsed array whose
// data matches its dims, or a one-line BAD_DATASET; never another exception, a hang, or an allocation out of
// proportion to the input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { IDX_IMAGES, IDX_LABELS, parseIdx, readIdx, type IdxArray } from '../src/datasets/idx.js';
import { loadFashionMnist } from '../src/datasets/fashion-mnist.js';
import {
  applyMutations, expectClean, fcOptions, fuzzRuns, invalid, mutate, mutationsArb, seedMutationsArb, Tally,
  truncationPoints, type Field, type Layout,
} from './helpers/fuzz.js';
import { idxFile } from './helpers/idx.js';

const tally = new Tally('idx');
const DEBIAN = '/usr/share/datasets/fashion-mnist';
const BUDGET = { plain: 300, gzip: 400, split: 150 };
const TOTAL = BUDGET.plain + BUDGET.gzip + BUDGET.split;

// Real data where the Debian package is installed (scripts/install-test-deps.sh), a synthetic stand-in if not.
const haveDebian = existsSync(path.join(DEBIAN, 't10k-labels-idx1-ubyte.gz'));
const LABELS_GZ = haveDebian
  ? new Uint8Array(readFileSync(path.join(DEBIAN, 't10k-labels-idx1-ubyte.gz')))
  : new Uint8Array(gzipSync(idxFile(IDX_LABELS, [1000], new Uint8Array(1000).map((_, i) => i % 10))));
const labels = readIdx(LABELS_GZ, 'labels');
const COUNT = 64;
const imagesAll = haveDebian ? readIdx(new Uint8Array(readFileSync(path.join(DEBIAN, 't10k-images-idx3-ubyte.gz'))), 'images').data : new Uint8Array(COUNT * 784).map((_, i) => (i * 37) & 0xff);
const IMAGES = idxFile(IDX_IMAGES, [COUNT, 28, 28], imagesAll.subarray(0, COUNT * 784));
const LABELS = idxFile(IDX_LABELS, [COUNT], labels.data.subarray(0, COUNT));
const IMAGES_GZ = new Uint8Array(gzipSync(IMAGES));

/** Deflate may legitimately expand 1032:1, so compressed inputs get that factor rather than the default 64. */
const GZIP_BOUND = { factor: 1040 };

function validIdx(a: IdxArray): void {
  if (!Array.isArray(a.dims) || a.dims.length < 1 || !a.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) invalid(`dims ${a.dims}`);
  if (a.data.length !== a.dims.reduce((p, d) => p * d, 1)) invalid(`${a.data.length} bytes for dims [${a.dims}]`);
}

function idxLayout(bytes: Uint8Array): Layout {
  const ndim = bytes[3];
  const fields: Field[] = [
    { at: 2, width: 1, littleEndian: false, name: 'element type' },
    { at: 3, width: 1, littleEndian: false, name: 'dimension count' },
  ];
  for (let i = 0; i < ndim; i++) fields.push({ at: 4 + 4 * i, width: 4, littleEndian: false, name: `dim ${i}` });
  return { boundaries: [0, 2, 3, 4, ...fields.slice(2).map((f) => f.at + 4), bytes.length], fields };
}

function gzipLayout(bytes: Uint8Array): Layout {
  const n = bytes.length;
  return {
    boundaries: [0, 2, 3, 4, 10, n >> 1, n - 8, n - 4, n],
    fields: [
      { at: 3, width: 1, littleEndian: true, name: 'gzip flags' },
      { at: n - 8, width: 4, littleEndian: true, name: 'CRC-32' },
      { at: n - 4, width: 4, littleEndian: true, name: 'ISIZE' },
    ],
  };
}

const PLAIN = [IMAGES, LABELS].map((bytes) => ({ bytes, layout: idxLayout(bytes) }));
const GZ = [IMAGES_GZ, LABELS_GZ].map((bytes) => ({ bytes, layout: gzipLayout(bytes) }));

test('truncation at every section boundary, plain and gzip', () => {
  for (const { bytes, layout } of [...PLAIN, ...GZ]) {
    for (const at of truncationPoints({ bytes, layout })) {
      expectClean(tally, `truncate ${at}`, at, () => readIdx(bytes.subarray(0, at), 'cut.idx'), validIdx, GZIP_BOUND);
    }
  }
});

test('plain idx: element type, dimension count, oversized dims, bit flips, insertions, deletions', () => {
  fc.assert(fc.property(seedMutationsArb(PLAIN),
    (drawn) => {
      const { which, bytes, description } = mutate(PLAIN, drawn);
      const label = `plain ${which}: ${description}`;
      expectClean(tally, label, bytes.length, () => parseIdx(bytes, 'fuzz.idx', which === 0 ? IDX_IMAGES : IDX_LABELS), validIdx);
      // the same damage inside a valid gzip container
      const gz = new Uint8Array(gzipSync(bytes));
      expectClean(tally, `${label} (gzipped)`, gz.length, () => readIdx(gz, 'fuzz.idx.gz'), validIdx, GZIP_BOUND);
    }), fcOptions(fuzzRuns(BUDGET.plain, TOTAL)));
});

test('gzip container: flags, deflate stream, CRC-32 and ISIZE trailer', () => {
  fc.assert(fc.property(seedMutationsArb(GZ),
    (drawn) => {
      const { which, bytes, description } = mutate(GZ, drawn);
      const before = readIdx(GZ[which].bytes, 'ok');
      expectClean(tally, `gzip ${which}: ${description}`, bytes.length, () => readIdx(bytes, 'fuzz.idx.gz'), (a) => {
        validIdx(a);
        // CRC-32 and ISIZE are checked, so damaged data must not come back as different pixels.
        if (a.data.length === before.data.length && !a.data.every((v, i) => v === before.data[i])) invalid('damaged gzip decoded to different data');
      }, GZIP_BOUND);
    }), fcOptions(fuzzRuns(BUDGET.gzip, TOTAL)));
});

test('a Fashion-MNIST split from damaged files: each file, and files that disagree', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vimedge-fuzz-idx-'));
  try {
    fc.assert(fc.property(fc.nat({ max: 1 }), fc.oneof(
      fc.record({ kind: fc.constant('mutate' as const), mutations: mutationsArb(IMAGES_GZ, GZ[0].layout, 2) }),
      fc.record({ kind: fc.constant('labels' as const), count: fc.oneof(fc.constantFrom(0, COUNT - 1, COUNT + 1), fc.nat({ max: 200 })), value: fc.constantFrom(0, 9, 10, 255) }),
      fc.record({ kind: fc.constant('images' as const), rows: fc.constantFrom(28, 27, 0, 1), cols: fc.constantFrom(28, 29, 0) }),
    ), (target, edit) => {
      let images: Uint8Array = IMAGES_GZ, labelsGz: Uint8Array = new Uint8Array(gzipSync(LABELS));
      if (edit.kind === 'mutate') {
        const bytes = applyMutations(IMAGES_GZ, GZ[0].layout, edit.mutations);
        if (target === 0) images = bytes; else labelsGz = applyMutations(labelsGz, gzipLayout(labelsGz), edit.mutations);
      } else if (edit.kind === 'labels') {
        const data = new Uint8Array(edit.count).map((_, i) => labels.data[i % labels.data.length]);
        if (edit.count > 0) data[edit.count - 1] = edit.value;
        labelsGz = new Uint8Array(gzipSync(idxFile(IDX_LABELS, [edit.count], data)));
      } else {
        images = new Uint8Array(gzipSync(idxFile(IDX_IMAGES, [COUNT, edit.rows, edit.cols], new Uint8Array(COUNT * edit.rows * edit.cols))));
      }
      writeFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz'), images);
      writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte.gz'), labelsGz);
      expectClean(tally, `split ${JSON.stringify(edit).slice(0, 200)}`, images.length + labelsGz.length, () => loadFashionMnist('test', dir), (set) => {
        if (set.images.length !== set.count * set.rows * set.cols || set.labels.length !== set.count) invalid('sizes disagree');
        if (!set.labels.every((l) => l < set.labelNames.length)) invalid('a label out of range');
      }, GZIP_BOUND);
    }), fcOptions(fuzzRuns(BUDGET.split, TOTAL)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the unmutated files parse (the fuzz starts from valid files)', () => {
  for (const { bytes } of [...PLAIN, ...GZ]) validIdx(readIdx(bytes, 'ok'));
  const dir = mkdtempSync(path.join(tmpdir(), 'vimedge-fuzz-idx-'));
  writeFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz'), IMAGES_GZ);
  writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(LABELS));
  assert.is(loadFashionMnist('test', dir).count, COUNT);
  rmSync(dir, { recursive: true, force: true });
});

test.after(() => tally.report());

test.run();

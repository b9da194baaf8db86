// The committed test images and what the Python reference made of them (tools/make_preprocess_fixtures.py:
// PIL 9.4 + torchvision 0.14): PIL's decoded RGB bytes of every image, its crop and tensor under each
// preprocessing spec, and the resize and luma cases on synthetic images.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { ResampleFilter } from '../../src/preprocess/pil-resize.js';
import type { PreprocessSpec } from '../../src/preprocess/pipeline.js';
import { IMAGES_DIR, ROOT } from './hosts.js';

const GENERATED = join(ROOT, 'test/fixtures/generated/image-reference');
const SCRIPT = join(ROOT, 'tools/make_preprocess_fixtures.py');

export interface ImageReference {
  specs: Record<string, PreprocessSpec>;
  images: { file: string; width: number; height: number; rgb: string;
            specs: Record<string, { crop: string; tensor: string }> }[];
  resize: { name: string; width: number; height: number; channels: 1 | 3; outWidth: number; outHeight: number;
            filter: ResampleFilter; input: string; expected: string }[];
  luma: { width: number; height: number; input: string; expected: string };
}

/** The reference's manifest. Its files are generated (git-ignored): (re)made when missing or stale. */
export function loadImageReference(): ImageReference {
  const path = join(GENERATED, 'manifest.json');
  const sources = [SCRIPT, ...readdirSync(IMAGES_DIR).map((f) => join(IMAGES_DIR, f))];
  if (!existsSync(path) || sources.some((f) => statSync(f).mtimeMs > statSync(path).mtimeMs)) {
    const run = spawnSync('/usr/bin/python3', [SCRIPT], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`${SCRIPT} failed: ${run.stderr ?? run.error}`);
  }
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** A file the reference wrote, named as in its manifest. */
export const referenceBytes = (name: string) => new Uint8Array(readFileSync(join(GENERATED, name)));

/** A committed test image. */
export const imageFixture = (file: string): Uint8Array<ArrayBuffer> => new Uint8Array(readFileSync(join(IMAGES_DIR, file)));

/** How many elements of two equal-length arrays differ, and by how much at most. */
export function difference(a: ArrayLike<number>, b: ArrayLike<number>): { count: number; max: number } {
  assert.is(a.length, b.length, 'lengths');
  let count = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > 0) count++;
    if (d > max) max = d;
  }
  return { count, max };
}

// Shared by the quant-* suites: the small fixtures as fp32 models, seeded calibration and test inputs.
import { golden } from './golden.js';
import { rng } from './kernels.js';
import { convertCheckpoint } from '../../src/convert/checkpoint.js';
import { readFloatModel } from '../../src/model/model-file.js';
import type { FloatModel } from '../../src/convert/float-model.js';
import type { CalibrationImages } from '../../src/quant/calibration-source.js';

/** small-gray: the shipped model's input shape (1x28x28, patch 4, L = 50) with D = 32, depth 3. */
export const SMALL_GRAY = 'test/fixtures/small/small-gray';
/** small: 3x64x64, patch 16, L = 17, D = 32, depth 2. */
export const SMALL_RGB = 'test/fixtures/small/small';

export async function fixtureVimq(dir = SMALL_GRAY): Promise<Uint8Array> {
  const g = golden(dir)!;
  const size = Number(g.manifest.config.img_size);
  return convertCheckpoint(g.bytes('model.pth'), 'model.pth', { preprocess: { resize: size, crop: size } });
}

export async function fixtureModel(dir = SMALL_GRAY): Promise<FloatModel> {
  return readFloatModel(await fixtureVimq(dir), `${dir}.vimq`);
}

/** The fixture's three reference inputs (seed 0), then seeded N(0, 1) images: the fixture's input distribution. */
export function inputs(count: number, seed: number, dir = SMALL_GRAY): Float32Array[] {
  const g = golden(dir)!;
  const c = g.manifest.config;
  const size = Number(c.in_chans) * Number(c.img_size) ** 2;
  const r = rng(seed);
  return Array.from({ length: count }, (_, i) => (i < 3 && seed === 0 ? g.f32(`input-${i}.f32`) : r.normals(size)));
}

export function calibrationSet(count: number, seed = 0, dir = SMALL_GRAY): CalibrationImages {
  const images = inputs(count, seed, dir);
  return { name: `synthetic:${seed}`, count, input: async (i) => images[i] };
}

export const argmax = (a: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
};

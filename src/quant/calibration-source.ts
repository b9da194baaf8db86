/**
 * Calibration images: `fashion-mnist:train` (training images only: calibrating on the test split would leak
 * it into the reported accuracy) or a folder of image files (searched recursively, class sub-folders or
 * not). A seeded sample of `size` images, preprocessed with the model's own pipeline, read one at a time.
 */
import { openDataset } from '../datasets/open.js';
import { listImages } from '../datasets/image-folder.js';
import { decodeImageFile } from '../hosts/node-decode.js';
import { preprocess, type PreprocessSpec, type RawImage } from '../preprocess/pipeline.js';
import { sampleIndices, seededRandom } from './random.js';
import { fail } from '../errors.js';

export interface CalibrationImages {
  /** What --calib said, e.g. "fashion-mnist:train". */
  name: string;
  count: number;
  /** Model input i: [C, H, W] float32. */
  input(i: number): Promise<Float32Array>;
}

/** All images of a calibration set, by index, before sampling. */
async function openSet(spec: string): Promise<{ count: number; image(i: number): Promise<RawImage> }> {
  const [set, split] = spec.split(':');
  if (set === 'fashion-mnist') {
    if (split !== undefined && split !== 'train') {
      fail('BAD_ARGUMENT', `--calib ${spec}: calibrate on training images only (fashion-mnist:train)`);
    }
    const data = await openDataset('fashion-mnist', 'train');
    return { count: data.count, image: async (i) => (await data.get(i)).image };
  }
  const files = await listImages(spec).catch(() => fail('BAD_DATASET', `--calib ${spec}: not a readable folder`));
  if (files.length === 0) fail('BAD_DATASET', `--calib ${spec}: no image files in the folder`);
  return { count: files.length, image: (i) => decodeImageFile(files[i]) };
}

/** The default calibration size: the whole set up to this many images. */
export const MAX_DEFAULT_CALIBRATION = 256;
/** Fewer images than this give noisy activation ranges (warned about, not refused: a small set may be all there is). */
export const USEFUL_CALIBRATION = 32;

/** A seeded sample of `size` images of the set; without a size, the whole set up to MAX_DEFAULT_CALIBRATION. */
export async function calibrationImages(spec: string, size: number | undefined, seed: number,
                                        pipeline: PreprocessSpec): Promise<CalibrationImages> {
  if (size !== undefined && (!Number.isInteger(size) || size < 1)) {
    fail('BAD_ARGUMENT', `--calib-size must be a positive integer, got ${size}`);
  }
  const set = await openSet(spec);
  if (size !== undefined && set.count < size) {
    fail('BAD_DATASET', `--calib ${spec} has ${set.count} images, fewer than --calib-size ${size}`);
  }
  const count = size ?? Math.min(set.count, MAX_DEFAULT_CALIBRATION);
  const chosen = sampleIndices(set.count, count, seededRandom(seed));
  return {
    name: spec,
    count,
    input: async (i) => preprocess(await set.image(chosen[i]), pipeline),
  };
}

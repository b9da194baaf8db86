/** `--dataset` / `--calib` values: `fashion-mnist` (Debian's idx files) or a folder of class sub-folders. */
import { loadFashionMnist } from './fashion-mnist.js';
import { imageFolder } from './image-folder.js';
import type { LabelledImages } from './labelled-images.js';

export type Split = 'train' | 'test';

export async function openDataset(spec: string, split: Split): Promise<LabelledImages> {
  if (spec !== 'fashion-mnist') return imageFolder(spec);
  const set = loadFashionMnist(split);
  const pixels = set.rows * set.cols;
  return {
    name: `fashion-mnist:${split}`,
    count: set.count,
    classNames: set.labelNames,
    async get(i) {
      const data = set.images.subarray(i * pixels, (i + 1) * pixels);
      return { image: { width: set.cols, height: set.rows, channels: 1, data }, label: set.labels[i] };
    },
  };
}

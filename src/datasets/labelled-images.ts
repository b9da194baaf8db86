/** A labelled image set to evaluate on: Fashion-MNIST, or a folder of class sub-folders. */
import type { RawImage } from '../preprocess/pipeline.js';

export interface LabelledImages {
  name: string;
  count: number;
  /** Class names in the data set's index order. */
  classNames: string[];
  /** Image i (0-based) and its class index into `classNames`. */
  get(i: number): Promise<{ image: RawImage; label: number; file?: string }>;
}

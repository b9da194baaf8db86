/** Runs a classifier over a labelled image set and accumulates the metrics. */
import type { ImageClassifier } from '../api.js';
import type { LabelledImages } from '../datasets/labelled-images.js';
import type { RawImage } from '../preprocess/pipeline.js';
import { Metrics, type EvalSummary } from './metrics.js';
import { fail } from '../errors.js';

export interface EvalResult extends EvalSummary {
  dataset: string;
  images_per_s: number;
}

/**
 * Maps the data set's class indices to the model's: by name when every class name is one of the model's
 * labels, otherwise by index (the ImageFolder convention), which needs equal class counts.
 */
function classMapping(data: LabelledImages, modelLabels: string[]): number[] {
  const byName = data.classNames.map((n) => modelLabels.indexOf(n));
  if (byName.every((i) => i >= 0)) return byName;
  if (data.classNames.length !== modelLabels.length) {
    fail('BAD_DATASET', `${data.name}: ${data.classNames.length} classes, the model has ${modelLabels.length}, and the names do not match its labels`);
  }
  return data.classNames.map((_, i) => i);
}

export async function evaluate(classifier: ImageClassifier<RawImage>, data: LabelledImages, limit: number,
                               onProgress?: (done: number) => void): Promise<EvalResult> {
  const labels = classifier.info.labels;
  const mapping = classMapping(data, labels);
  const metrics = new Metrics(labels);
  const count = Math.min(limit, data.count);
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const { image, label } = await data.get(i);
    metrics.add(await classifier.logits(image), mapping[label]);
    onProgress?.(i + 1);
  }
  const seconds = (performance.now() - started) / 1000;
  return { dataset: data.name, ...metrics.summary(), images_per_s: count / seconds };
}

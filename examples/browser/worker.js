// The Web Worker: loads the model once, classifies what the page posts (File/Blob or ImageBitmap).
// From npm: import { loadClassifier } from 'vimedge' (the `browser` condition picks the same bundle).
import { loadClassifier } from '../../dist/browser/vimedge.js';

const query = new URL(self.location.href).searchParams;
const model = query.get('model');
// threads > 1: Web Workers of the library's own on this model's shared memory (needs cross-origin isolation).
const classifier = loadClassifier(new URL(model, self.location.href), { threads: Number(query.get('threads') ?? 1) });

classifier.then(
  (clf) => postMessage({ type: 'ready', info: { labels: clf.info.labels, config: clf.info.config } }),
  (err) => postMessage({ type: 'error', message: `Cannot load the model: ${err.message}` }),
);

self.onmessage = async ({ data: { id, image } }) => {
  try {
    const clf = await classifier;
    const t0 = performance.now();
    const top5 = await clf.classify(image, { topK: 5 });
    postMessage({ type: 'result', id, top5, ms: performance.now() - t0 });
  } catch (err) {
    postMessage({ type: 'error', id, message: err.message });
  } finally {
    if (typeof image?.close === 'function') image.close(); // ImageBitmap from the camera
  }
};

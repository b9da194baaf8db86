// Node: node examples/node/classify.mjs MODEL IMAGE... (one JSON line of top-5 per image)
import { loadClassifier } from 'vimedge';

const [model, ...images] = process.argv.slice(2);
const classifier = await loadClassifier(model); // a path, a URL or bytes; no argument: the shipped model
for (const image of images) {
  const top5 = await classifier.classify(image, { topK: 5 }); // a path, a URL, bytes, a Blob, pixels or a tensor
  console.log(JSON.stringify({ image, top5 }));
}
classifier.dispose();

// Deno: deno run --allow-read=MODEL_DIR,IMAGE... classify.ts [--threads=N] MODEL IMAGE... (one JSON line of
// top-5 per image). Reads only the model and the images: the WebAssembly is inside the bundle, which needs no
// permission; threads are Web Workers on the model's shared memory.
import { loadClassifier } from 'vimedge'; // deno.json maps it to the build; in an app: "npm:vimedge"

const threads = Deno.args.find((a) => a.startsWith('--threads='));
const [model, ...images] = Deno.args.filter((a) => a !== threads);
// model: a path, a file: or https: URL, or bytes
const classifier = await loadClassifier(model, { threads: threads ? Number(threads.slice('--threads='.length)) : 1 });
for (const image of images) {
  const top5 = await classifier.classify(image, { topK: 5 }); // JPEG/PNG: a path, URL, bytes or a Blob
  console.log(JSON.stringify({ image, top5 }));
}
classifier.dispose();

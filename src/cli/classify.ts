/** `vimedge classify <files or folders>...`: top-K labels per image, one line (or JSON object) each. */
import { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { defaultModelPath } from '../hosts/node.js';
import { fail, VimedgeError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import { printLines } from './print.js';
import { positiveInt, threadsOption, maxMemoryOption, weightsOption } from './args.js';

/** Files as given, folders expanded (recursively, sorted) to the images inside them; a folder without any is refused. */
async function expandInputs(inputs: string[]): Promise<{ files: string[]; fromFolder: boolean }> {
  const { listImages } = await import('../datasets/image-folder.js');
  const files: string[] = [];
  let fromFolder = false;
  for (const input of inputs) {
    const info = await stat(input).catch(() => undefined);
    if (info?.isDirectory()) {
      fromFolder = true;
      const images = await listImages(input);
      if (images.length === 0) fail('BAD_DATASET', `no images found in ${input}`);
      files.push(...images);
    } else {
      files.push(input); // a missing file is reported when it is read, with the others still classified
    }
  }
  return { files, fromFolder };
}

export function classifyCommand(): Command {
  return new Command('classify')
    .description('classify image files and folders')
    .argument('<inputs...>', 'image files or folders of images')
    .option('-m, --model <file>', 'model (.vimq, .pth or .safetensors)', defaultModelPath())
    .option('-k, --top <k>', 'how many labels to print', positiveInt('--top'), 5)
    .option('--json', 'one JSON object per line')
    .option('--logits', 'include the raw logits (with --json)')
    .option('--max-pixels <n>', 'refuse images with more pixels than this', positiveInt('--max-pixels'))
    .addOption(threadsOption())
    .addOption(maxMemoryOption())
    .addOption(weightsOption())
    .action(async (inputs: string[], opts) => {
      const { loadClassifier } = await import('../index.js');
      const { rankLabels } = await import('../classifier.js');
      const { SingleBar, Presets } = await import('cli-progress');
      const { files, fromFolder } = await expandInputs(inputs);
      const classifier = await loadClassifier(opts.model, { threads: opts.threads, maxMemory: opts.maxMemory, convert: { weights: opts.weights } });
      const bar = fromFolder && process.stderr.isTTY ? new SingleBar({ stream: process.stderr }, Presets.shades_classic) : undefined;
      bar?.start(files.length, 0);
      let failed = 0;
      for (const file of files) {
        try {
          // One forward pass for both: the logits, ranked as classifier.classify ranks them.
          const logits = await classifier.logits(file, { maxPixels: opts.maxPixels });
          const top = rankLabels(logits, classifier.info.labels, opts.top);
          const line = opts.json
            ? JSON.stringify({ file, top, ...(opts.logits ? { logits: Array.from(logits) } : {}) })
            : `${file}: ${top.map((p) => `${p.label} (${p.score.toFixed(4)})`).join(', ')}`;
          printLines(line);
        } catch (e) {
          if (!(e instanceof VimedgeError)) throw e;
          failed++;
          // --json: stdout stays one object per input, so a reader sees every file, failed or not.
          if (opts.json) printLines(JSON.stringify({ file, error: { code: e.code, message: e.message } }));
          else process.stderr.write(`vimedge: ${e.message}\n`);
        }
        bar?.increment();
      }
      bar?.stop();
      if (failed > 0) {
        process.stderr.write(`vimedge: ${failed} of ${files.length} images could not be classified\n`);
        process.exitCode = EXIT.badInput;
      }
    });
}

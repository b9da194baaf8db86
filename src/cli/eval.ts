/** `vimedge eval <model> --dataset fashion-mnist|<folder>`: accuracy, per-class, confusion, speed. */
import { Command, Option } from 'commander';
import { defaultModelPath } from '../hosts/node.js';
import { writeFileAtomic } from './output.js';
import { printLines } from './print.js';
import { outputFile, positiveInt, threadsOption, maxMemoryOption } from './args.js';

export function evalCommand(): Command {
  return new Command('eval')
    .description('measure accuracy on a labelled data set')
    .argument('[model]', 'model file', defaultModelPath())
    .requiredOption('--dataset <name>', "'fashion-mnist' or a folder with one sub-folder per class")
    .addOption(new Option('--split <split>', 'fashion-mnist split').choices(['test', 'train']).default('test'))
    .option('--limit <n>', 'evaluate the first n images only', positiveInt('--limit'))
    .option('--json', 'print one JSON object')
    .option('--plot <file>', 'write the confusion matrix as a PNG', outputFile('--plot'))
    .option('--predictions', 'include the top-1 prediction of every image (with --json)')
    .addOption(threadsOption())
    .addOption(maxMemoryOption())
    .action(async (file: string, opts) => {
      const { loadClassifier } = await import('../index.js');
      const { openDataset } = await import('../datasets/open.js');
      const { evaluate } = await import('../eval/evaluate.js');
      const { formatConfusion } = await import('../eval/metrics.js');
      const { SingleBar, Presets } = await import('cli-progress');
      const classifier = await loadClassifier(file, { threads: opts.threads, maxMemory: opts.maxMemory });
      const data = await openDataset(opts.dataset, opts.split);
      const count = Math.min(opts.limit ?? Infinity, data.count);
      const bar = process.stderr.isTTY ? new SingleBar({ stream: process.stderr, etaBuffer: 200 }, Presets.shades_classic) : undefined;
      bar?.start(count, 0);
      const result = await evaluate(classifier, data, count, (done) => { if (done % 50 === 0 || done === count) bar?.update(done); });
      bar?.stop();
      const labels = classifier.info.labels;
      if (opts.plot) {
        const { confusionPng } = await import('../report/confusion-plot.js');   // vega: only for a plot
        await writeFileAtomic(opts.plot, await confusionPng(result, labels, `${file} on ${result.dataset}: top-1 ${(100 * result.top1).toFixed(2)}%`));
      }
      if (opts.json) {
        const { predictions, ...rest } = result;
        printLines(JSON.stringify({ model: file, ...rest, ...(opts.predictions ? { predictions } : {}) }));
        return;
      }
      printLines(`${file} on ${result.dataset}: ${result.images} images, top-1 ${(100 * result.top1).toFixed(2)}%, ` +
        `top-5 ${(100 * result.top5).toFixed(2)}%, ${result.images_per_s.toFixed(1)} images/s`);
      // A class without images has no accuracy: '-', not a 0.0% that reads as all wrong.
      for (const c of result.per_class) {
        const accuracy = c.images > 0 ? `${(100 * c.top1).toFixed(1)}%` : '-';
        printLines(`  ${c.label.padEnd(14)} ${accuracy.padStart(6)}  (${c.images} images)`);
      }
      printLines(`confusion (rows: true class, columns: predicted)\n${formatConfusion(result, labels)}`);
    });
}

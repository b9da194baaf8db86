/** `vimedge outliers <model> --calib SET -o outliers.png`: where the activation outliers are, before and after a method. */
import { Command } from 'commander';
import { readFileChecked } from '../hosts/node.js';
import { readKernelWasm } from '../hosts/node-wasm.js';
import { METHOD_NAMES } from '../model/contract.js';
import { writeFileAtomic } from './output.js';
import { maxMemoryOption, outputFile, positiveInt } from './args.js';

export function outliersCommand(): Command {
  return new Command('outliers')
    .description("draw max |x| per channel and per token at every quantized site, before and after a method's transforms")
    .argument('<model>', 'fp32 .vimq, .pth or .safetensors file')
    .requiredOption('-o, --output <file>', 'the PNG to write', outputFile('--output'))
    .option('--method <name>', `the transforms to show: ${METHOD_NAMES.join(' | ')}`, 'mambaquant')
    .option('--calib <set>', "images: 'fashion-mnist:train' or a folder of images", 'fashion-mnist:train')
    .option('--calib-size <n>', 'images (a seeded sample)', positiveInt('--calib-size'), 64)
    .addOption(maxMemoryOption())
    .option('--seed <n>', 'seed of the sample and of the Hadamard signs', (v) => Number(v), 0)
    .option('--json', 'print the per-site summary as one JSON object')
    .action(async (file: string, opts) => {
      const { methodByName } = await import('../quant/methods.js');
      const { readFloatModel } = await import('../model/model-file.js');
      const { calibrationImages } = await import('../quant/calibration-source.js');
      const { outlierReport, summarize } = await import('../quant/outliers.js');
      const { outlierPng } = await import('../report/outlier-chart.js');
      methodByName(opts.method);
      const bytes = await readFileChecked(file, 'model');
      const source = await readFloatModel(bytes, file, {}, opts.maxMemory);
      const images = await calibrationImages(opts.calib, opts.calibSize, opts.seed, source.metadata.preprocess);
      const report = await outlierReport(source, images, await readKernelWasm(), opts.method, opts.seed);
      await writeFileAtomic(opts.output, await outlierPng(report));
      const rows = report.before.map((p, i) => ({ before: summarize(p), after: summarize(report.after[i]) }));
      if (opts.json) {
        console.log(JSON.stringify({ output: opts.output, method: opts.method, transforms: report.transforms, images: report.images, sites: rows }));
        return;
      }
      console.log(`wrote ${opts.output}: ${opts.method} [${report.transforms.join(', ')}] on ${report.images} images of ${opts.calib}`);
      console.log('site                         max|x| before -> after   worst channel max/median   worst token max/median');
      for (const { before: b, after: a } of rows) {
        console.log(`${b.site.padEnd(28)} ${b.max.toPrecision(3).padStart(8)} -> ${a.max.toPrecision(3).padEnd(8)}` +
          `   ${b.channelRatio.toFixed(1).padStart(7)} -> ${a.channelRatio.toFixed(1).padEnd(12)}` +
          `   ${b.tokenRatio.toFixed(1).padStart(7)} -> ${a.tokenRatio.toFixed(1)}`);
      }
    });
}

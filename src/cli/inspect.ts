/** `vimedge inspect <model>`: config, parameter counts, preprocessing, size. */
import { Command } from 'commander';
import { readFileChecked } from '../hosts/node.js';
import { describeRecipe } from '../quant/recipe.js';
import { printLines } from './print.js';

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('print a model\'s config, parameter count, preprocessing and size')
    .argument('<model>', '.vimq, .pth or .safetensors file')
    .option('--json', 'print one JSON object')
    .action(async (file: string, opts) => {
      const { readModel } = await import('../model/model-file.js');
      const { describeSource } = await import('../convert/checkpoint.js');
      const bytes = await readFileChecked(file, 'model');
      const { metadata } = await readModel(bytes, file);
      const parameters = metadata.tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
      const summary = {
        file, bytes: bytes.length, format: metadata.format, weights: metadata.weights,
        quantization: metadata.quantization, parameters, config: metadata.config,
        preprocess: metadata.preprocess, classes: metadata.labels.length,
        labels: metadata.labels.slice(0, 10), source: metadata.source,
      };
      if (opts.json) {
        printLines(JSON.stringify(summary));
        return;
      }
      const c = metadata.config;
      const p = metadata.preprocess;
      printLines([
        `${file}: ${(bytes.length / 1e6).toFixed(1)} MB, ${metadata.weights} weights, ${parameters.toLocaleString('en-US')} parameters`,
        `  shape:      D=${c.embedDim} depth=${c.depth} E=${c.innerDim} N=${c.dState} R=${c.dtRank} K=${c.dConv}`,
        `  input:      ${c.channels}x${c.imageSize}x${c.imageSize}, patch ${c.patchSize} stride ${c.stride}, L=${c.numTokens} tokens, class token at ${c.clsIndex}`,
        `  classes:    ${c.numClasses} (${metadata.labels.slice(0, 5).join(', ')}${c.numClasses > 5 ? ', ...' : ''})`,
        `  preprocess: resize ${p.resize} ${p.interpolation}, crop ${p.crop}, mean [${p.mean}], std [${p.std}]`,
        `  quantization: ${describeRecipe(metadata.quantization)}`,
        ...describeSource(metadata.source).map(([label, text]) => `  ${`${label}:`.padEnd(12)}${text}`),
      ].join('\n'));
    });
}

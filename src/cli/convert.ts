/** `vimedge convert <checkpoint> -o out.vimq`: a .pth or .safetensors checkpoint to a .vimq model file. */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot, readFileChecked } from '../hosts/node.js';
import { readLabels } from '../model/labels.js';
import { writeFileAtomicWith } from './output.js';
import { numberList, outputFile, positiveInt, weightsOption } from './args.js';

/** ImageNet-1k's class names (tools/imagenet_labels.py), for a 1000-class checkpoint converted without --labels. */
const IMAGENET_LABELS = 'models/imagenet-labels.txt';

export function convertCommand(): Command {
  return new Command('convert')
    .description('convert a PyTorch checkpoint (.pth or .safetensors) to a .vimq model file')
    .argument('<checkpoint>', '.pth (torch.save) or .safetensors file')
    .requiredOption('-o, --output <file>', 'the .vimq file to write', outputFile('--output'))
    .option('--labels <file>', 'class names, one per line, in class-index order (default for 1000 classes: ImageNet\'s)')
    .option('--mean <a,b,c>', 'normalisation mean per channel (default: ImageNet)', numberList('--mean'))
    .option('--std <a,b,c>', 'normalisation std per channel (default: ImageNet)', numberList('--std'))
    .option('--resize <n>', 'shorter side after resizing (default 256)', positiveInt('--resize'))
    .option('--crop <n>', 'center crop size (default: the model input size)', positiveInt('--crop'))
    .addOption(new Option('--interpolation <kind>', 'resize filter').choices(['bicubic', 'bilinear']))
    .option('--stride <n>', 'patch stride, when the shapes alone cannot tell it (another than the default needs --crop)', positiveInt('--stride'))
    .addOption(weightsOption())
    .addOption(new Option('--class-token <position>', 'asserts where the class token sits (the shapes cannot tell; only middle runs)')
      .choices(['middle', 'head', 'none']))
    .addOption(new Option('--directions <merge>', 'asserts if_devide_out: the scan directions halved or summed (only halved runs)')
      .choices(['halved', 'summed']))
    .action(async (checkpoint: string, opts) => {
      const { writeConverted, describeSource } = await import('../convert/checkpoint.js');
      const bytes = await readFileChecked(checkpoint, 'model');
      const labels = opts.labels ? readLabels(await readFileChecked(opts.labels, 'labels'), opts.labels) : undefined;
      const imagenet = path.join(packageRoot() ?? '.', IMAGENET_LABELS);
      const fallbackLabels = labels || !existsSync(imagenet) ? undefined : readLabels(await readFileChecked(imagenet, 'labels'), imagenet);
      const preprocess = Object.fromEntries(Object.entries({
        mean: opts.mean, std: opts.std, resize: opts.resize, crop: opts.crop, interpolation: opts.interpolation,
      }).filter(([, v]) => v !== undefined));
      const variant = Object.fromEntries(Object.entries({ classToken: opts.classToken, directions: opts.directions })
        .filter(([, v]) => v !== undefined));
      const { length, source } = await writeFileAtomicWith(opts.output, (handle) => writeConverted(bytes, checkpoint,
        { labels, fallbackLabels, preprocess, stride: opts.stride, weights: opts.weights, variant },
        async (piece, position) => { await handle.write(piece, 0, piece.length, position); }));
      for (const [label, text] of describeSource(source)) console.log(`${label}: ${text}`);
      console.log(`wrote ${opts.output} (${(length / 1e6).toFixed(1)} MB)`);
    });
}

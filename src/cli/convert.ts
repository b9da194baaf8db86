/** `vimedge convert <checkpoint> -o out.vimq`: a .pth or .safetensors checkpoint to a .vimq model file. */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot, readFileChecked } from '../hosts/node.js';
import { readLabels } from '../model/labels.js';
import { writeFileAtomic } from './output.js';
import { numberList, outputFile, positiveInt } from './args.js';

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
    .option('--stride <n>', 'patch stride, when the shapes alone cannot tell it', positiveInt('--stride'))
    .action(async (checkpoint: string, opts) => {
      const { convertCheckpoint } = await import('../convert/checkpoint.js');
      const bytes = await readFileChecked(checkpoint, 'model');
      const labels = opts.labels ? readLabels(await readFileChecked(opts.labels, 'labels'), opts.labels) : undefined;
      const imagenet = path.join(packageRoot() ?? '.', IMAGENET_LABELS);
      const fallbackLabels = labels || !existsSync(imagenet) ? undefined : readLabels(await readFileChecked(imagenet, 'labels'), imagenet);
      const preprocess = Object.fromEntries(Object.entries({
        mean: opts.mean, std: opts.std, resize: opts.resize, crop: opts.crop, interpolation: opts.interpolation,
      }).filter(([, v]) => v !== undefined));
      const file = await convertCheckpoint(bytes, checkpoint, { labels, fallbackLabels, preprocess, stride: opts.stride });
      await writeFileAtomic(opts.output, file);
      console.log(`wrote ${opts.output} (${(file.length / 1e6).toFixed(1)} MB)`);
    });
}

/** `vimedge quantize <fp32 model> --method M --bits B --calib SET -o out.vimq`: post-training quantization. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { performance } from 'node:perf_hooks';
import { readFileChecked } from '../hosts/node.js';
import { readKernelWasm } from '../hosts/node-wasm.js';
import { BIT_WIDTHS, bitPlan, METHOD_NAMES, type BitWidth } from '../model/contract.js';
import { writeFileAtomic } from './output.js';
import { maxMemoryOption, outputFile, positiveInt, threadsOption, weightsOption } from './args.js';
import { fail } from '../errors.js';

/** --bits: a bit width by name, or the integer kernels' widths by their weight bits (8 -> w8a8, 4 -> w4a8). */
function bitWidth(value: string): BitWidth {
  const named = ({ 8: 'w8a8', 4: 'w4a8' } as Record<string, BitWidth>)[value] ?? value;
  if (!(BIT_WIDTHS as string[]).includes(named)) {
    throw new InvalidArgumentError(`--bits ${value}: expected ${BIT_WIDTHS.join(', ')}, or 8 / 4 for w8a8 / w4a8`);
  }
  return named as BitWidth;
}

export function quantizeCommand(): Command {
  return new Command('quantize')
    .description('quantize an fp32 model (W8A8 / W4A8 on the integer kernels; W6A6 / W4A4 simulated)')
    .argument('<model>', 'fp32 .vimq, .pth or .safetensors file')
    .requiredOption('-o, --output <file>', 'the quantized .vimq file to write', outputFile('--output'))
    .option('--method <name>', `${METHOD_NAMES.join(' | ')}`, 'mambaquant')
    .option('--bits <width>', `weight and activation bits: ${BIT_WIDTHS.join(' | ')}; 8 and 4 mean w8a8 and w4a8`, bitWidth, 'w8a8')
    .option('--calib <set>', "calibration images: 'fashion-mnist:train' or a folder of images", 'fashion-mnist:train')
    .option('--calib-size <n>', 'calibration images, a seeded sample (default: all the set has, at most 256)', positiveInt('--calib-size'))
    .addOption(weightsOption())
    .addOption(threadsOption())
    .addOption(maxMemoryOption())
    .option('--seed <n>', 'seed of the sample and of the Hadamard signs', (v) => Number(v), 0)
    .addOption(new Option('--activations <kind>', 'activation quantizers: static per tensor, static per token (PTS), dynamic per token')
      .choices(['tensor', 'token', 'dynamic']).default('tensor'))
    .addOption(new Option('--range <estimator>', "activation ranges (default: the method's)").choices(['minmax', 'percentile', 'mse']))
    .addOption(new Option('--weight-range <estimator>', 'weight clipping (default: minmax at 8/6 bits, mse at 4)').choices(['minmax', 'mse']))
    .option('--symmetric-activations', 'symmetric activation quantizers (zero point 0)')
    .option('--simulate', 'allow w6a6 / w4a4: narrower codes on the int8 kernels, for accuracy comparison only')
    .option('--json', 'print the recipe and timing as one JSON object')
    .action(async (file: string, opts) => {
      const { methodByName } = await import('../quant/methods.js');
      const { readFloatModel } = await import('../model/model-file.js');
      const { calibrationImages, USEFUL_CALIBRATION } = await import('../quant/calibration-source.js');
      const { quantizeModel } = await import('../quant/quantize-model.js');
      methodByName(opts.method);   // an unknown method fails before any work
      if (bitPlan(opts.bits).simulated && !opts.simulate) {
        fail('BAD_ARGUMENT', `--bits ${opts.bits} has no kernels of its own: add --simulate to run its codes on the int8 kernels (accuracy comparison only)`);
      }
      const started = performance.now();
      const bytes = await readFileChecked(file, 'model');
      const source = await readFloatModel(bytes, file, { weights: opts.weights }, opts.maxMemory);
      const images = await calibrationImages(opts.calib, opts.calibSize, opts.seed, source.metadata.preprocess);
      if (images.count < USEFUL_CALIBRATION) {
        process.stderr.write(`vimedge: warning: calibrating on ${images.count} images; activation ranges from fewer than `
          + `${USEFUL_CALIBRATION} are noisy and the quantized model may lose accuracy\n`);
      }
      const { createNodeThreads } = await import('../hosts/node-threads.js');
      const threads = opts.threads > 1 ? await createNodeThreads(opts.threads) : undefined;
      const result = await quantizeModel(source, images, await readKernelWasm(), {
        method: opts.method, bits: opts.bits, seed: opts.seed, granularity: opts.activations, range: opts.range,
        weightRange: opts.weightRange, symmetricActivations: opts.symmetricActivations, threads,
      }).finally(() => threads?.pool.dispose());
      await writeFileAtomic(opts.output, result.file);
      const seconds = (performance.now() - started) / 1000;
      if (opts.json) {
        console.log(JSON.stringify({ output: opts.output, bytes: result.file.length, seconds, recipe: result.recipe }));
        return;
      }
      const r = result.recipe;
      console.log(`wrote ${opts.output} (${(result.file.length / 1e6).toFixed(2)} MB, ${seconds.toFixed(1)} s): ${r.method} ` +
        `${r.bits}${r.simulated ? ' (simulated)' : ''}, calibrated on ${r.calibration.size} images of ${r.calibration.set} (seed ${r.calibration.seed})`);
    });
}

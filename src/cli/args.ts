/** Parsers for CLI option values, each failing with a message that names the flag. */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError, Option } from 'commander';
import { outputProblem } from './output.js';

export function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} needs a positive integer, got '${value}'`);
    return n;
  };
}

export function numberList(flag: string) {
  return (value: string): number[] => {
    const list = value.split(',').map(Number);
    if (list.some((v) => !Number.isFinite(v))) throw new InvalidArgumentError(`${flag} needs numbers like 0.5,0.5,0.5, got '${value}'`);
    return list;
  };
}

/** --threads: default all available cores (one image is split over them; logits do not change). */
export function threadsOption(): Option {
  return new Option('--threads <n>', 'threads per image').argParser(positiveInt('--threads'))
    .default(availableParallelism(), 'available cores');
}

/** An output file that may be written (output.ts): checked when the options are read, before minutes of work. */
export function outputFile(flag: string) {
  return (value: string): string => {
    const problem = outputProblem(value);
    if (problem !== undefined) throw new InvalidArgumentError(`${flag} ${problem}`);
    return value;
  };
}

/** --max-memory: LoadOptions.maxMemory in MiB. */
export function maxMemoryOption(): Option {
  return new Option('--max-memory <MiB>', 'refuse a model needing more WebAssembly memory than this (default 2048)')
    .argParser((value) => positiveInt('--max-memory')(value) * 2 ** 20);
}

/** --weights: which weights of a training checkpoint to take (convert, quantize, classify on a checkpoint). */
export function weightsOption(): Option {
  return new Option('--weights <which>', 'a training checkpoint\'s trained weights or their EMA copy (model_ema, state_dict_ema)')
    .choices(['model', 'ema']).default('model');
}

/**
 * The options every host's loadClassifier takes, checked before any reading, names included. Apart from
 * loading.ts (the readers, which the CLI loads at start-up) because it reaches into the converter's options.
 */
import type { LoadOptions } from '../api.js';
import { checkConvertOptions } from '../convert/checkpoint.js';
import { checkOptions, fail } from '../errors.js';
import { fetchLimits } from './loading.js';

/** Every LoadOptions name (the compiler keeps this list equal to the interface). */
export const LOAD_OPTION_NAMES: Record<keyof LoadOptions, true> = {
  wasm: true, convert: true, threads: true, maxMemory: true, fetch: true, onProgress: true, signal: true,
};

/**
 * The options every host takes, checked before any reading, nested ones included (a host adds its own names);
 * the thread count (an integer from 1 to 256).
 */
export function checkLoadOptions(options: LoadOptions, names: Record<string, true> = LOAD_OPTION_NAMES): number {
  const { maxMemory, convert, onProgress, signal, threads = 1 } = checkOptions(options, 'loadClassifier options', names);
  if (maxMemory !== undefined && !(typeof maxMemory === 'number' && maxMemory > 0)) {
    fail('BAD_ARGUMENT', `maxMemory must be a positive number of bytes, got ${String(maxMemory)}`);
  }
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) fail('BAD_ARGUMENT', `threads must be an integer from 1 to 256, got ${String(threads)}`);
  if (onProgress !== undefined && typeof onProgress !== 'function') fail('BAD_ARGUMENT', 'onProgress must be a function');
  if (signal !== undefined && !(typeof AbortSignal !== 'undefined' && signal instanceof AbortSignal)) fail('BAD_ARGUMENT', 'signal must be an AbortSignal');
  fetchLimits(options.fetch);
  checkConvertOptions(convert);
  return threads;
}

/** Any supported checkpoint file -> its state_dict, recognised by content rather than by file extension. */
import { fail } from '../errors.js';
import type { StateDict } from '../tensor.js';
import { isZip, readPthWeights } from './pth.js';
import { readSafetensors } from './safetensors.js';
import { stripWrapperPrefixes, type WeightsChoice } from './checkpoint-layout.js';

export type CheckpointFormat = 'pth' | 'safetensors';

/** An 8-byte length whose high half is zero, then the JSON header's opening brace. */
const looksLikeSafetensors = (bytes: Uint8Array): boolean =>
  bytes.length > 8 && bytes[4] === 0 && bytes[5] === 0 && bytes[6] === 0 && bytes[7] === 0 && bytes[8] === 0x7b;

const PICKLE_PROTO = 0x80;

/** Which reader the bytes need; a bare pickle counts as 'pth' so that readPth explains the legacy format. */
export function checkpointFormat(bytes: Uint8Array, name: string): CheckpointFormat {
  if (isZip(bytes)) return 'pth';
  if (looksLikeSafetensors(bytes)) return 'safetensors';
  if (bytes[0] === PICKLE_PROTO) return 'pth';
  const start = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return fail('BAD_CHECKPOINT', `${name}: not a recognised checkpoint (starts with ${start || 'nothing'}); `
    + 'accepted: a torch.save .pth/.pt file (zip format, torch >= 1.6) or a .safetensors file');
}

/** A checkpoint's chosen weights under the model's own key names, and what was done to find them. */
export interface CheckpointWeights {
  stateDict: StateDict;
  format: CheckpointFormat;
  /** Where in a .pth the weights were, e.g. "checkpoint['model_ema']" (a .safetensors holds only them). */
  location?: string;
  /** The wrapper prefix taken off every key ('module.', '_orig_mod.', or both nested); '' if none. */
  strippedPrefix: string;
  /** The training script's registered model name, when the checkpoint keeps its args. */
  trainedAs?: string;
}

export function readCheckpointWeights(bytes: Uint8Array, name: string, weights: WeightsChoice = 'model'): CheckpointWeights {
  const format = checkpointFormat(bytes, name);
  if (format === 'safetensors' && weights !== 'model') {
    fail('BAD_ARGUMENT', `${name}: a .safetensors file holds one set of weights; weights '${weights}' needs a .pth `
      + 'training checkpoint that keeps them (model_ema or state_dict_ema)');
  }
  const read = format === 'pth' ? readPthWeights(bytes, name, weights)
    : { stateDict: readSafetensors(bytes, name) };
  const { stateDict, prefix } = stripWrapperPrefixes(read.stateDict);
  return { ...read, stateDict, format, strippedPrefix: prefix };
}

export function readCheckpoint(bytes: Uint8Array, name: string): StateDict {
  return readCheckpointWeights(bytes, name).stateDict;
}

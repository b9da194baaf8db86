/** Any supported checkpoint file -> its state_dict, recognised by content rather than by file extension. */
import { fail } from '../errors.js';
import type { StateDict } from '../tensor.js';
import { isZip, readPth } from './pth.js';
import { readSafetensors } from './safetensors.js';

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

export function readCheckpoint(bytes: Uint8Array, name: string): StateDict {
  return checkpointFormat(bytes, name) === 'pth' ? readPth(bytes, name) : readSafetensors(bytes, name);
}

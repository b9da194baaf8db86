/** Class-name files: UTF-8, one name per line, in class-index order; blank trailing lines ignored. */
import { fail } from '../errors.js';

export function readLabels(bytes: Uint8Array, file: string): string[] {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('BAD_ARGUMENT', `${file}: labels file is not UTF-8 text`);
  }
  const labels = text.replace(/\r\n/g, '\n').replace(/\n+$/, '').split('\n').map((s) => s.trim());
  if (labels.some((l) => l === '')) fail('BAD_ARGUMENT', `${file}: empty line among the labels`);
  return labels;
}

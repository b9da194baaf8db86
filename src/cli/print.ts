/**
 * Lines for stdout. Labels, sources and file names come from untrusted model files and folders, so every
 * line goes through printable() (control and bidi characters escaped) and each line of a multi-line text on
 * its own; nothing is cut.
 */
import { printable } from '../errors.js';

export function printLines(text: string): void {
  for (const line of text.split('\n')) process.stdout.write(`${printable(line, Infinity)}\n`);
}

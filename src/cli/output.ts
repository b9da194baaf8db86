/**
 * Writes a file so that an interrupted run never leaves a partial one: temporary name, then rename. While a
 * temporary file exists, SIGINT / SIGTERM / SIGHUP (Ctrl-C, `kill`, a closed terminal) and process.exit()
 * remove it before the process ends; the signal then takes its default course, so the exit status still
 * says the run was interrupted.
 */
import { writeFile, rename, rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const pending = new Set<string>();

function removePending(): void {
  for (const file of pending) {
    try {
      rmSync(file, { force: true });
    } catch {
      // best effort: the process is ending
    }
  }
  pending.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  removePending();
  release();
  process.kill(process.pid, signal); // no listener left: the default action ends the process
}

function guard(file: string): void {
  if (pending.size === 0) {
    for (const signal of SIGNALS) process.on(signal, onSignal);
    process.on('exit', removePending);
  }
  pending.add(file);
}

function release(file?: string): void {
  if (file !== undefined) pending.delete(file);
  if (pending.size > 0 && file !== undefined) return;
  for (const signal of SIGNALS) process.off(signal, onSignal);
  process.off('exit', removePending);
}

export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${file}.partial-${process.pid}`;
  guard(temporary);
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, file);
  } catch (e) {
    await rm(temporary, { force: true });
    throw e;
  } finally {
    release(temporary);
  }
}

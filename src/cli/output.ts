/**
 * Writes a file so that an interrupted run never leaves a partial one: temporary name, then rename. While a
 * temporary file exists, SIGINT / SIGTERM / SIGHUP (Ctrl-C, `kill`, a closed terminal) and process.exit()
 * remove it before the process ends; the signal then takes its default course, so the exit status still
 * says the run was interrupted.
 *
 * The rename replaces whatever the path names, so only a regular file (or nothing) may be replaced: a device
 * (`-o /dev/null`), FIFO, socket, symbolic link or folder is refused, when the options are read (args.ts) and
 * again at write time.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { lstatSync, rmSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { fail } from '../errors.js';

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

/** Why `file` cannot be an output file (a line naming it), or undefined: a regular file or a new name in a folder. */
export function outputProblem(file: string): string | undefined {
  if (file === '') return "'' is not a file name";
  const folder = path.dirname(path.resolve(file));
  if (!statOrUndefined(folder, statSync)?.isDirectory()) return `${file}: the folder ${folder} does not exist`;
  const info = statOrUndefined(file, lstatSync);
  if (info === undefined || info.isFile()) return undefined;
  const kind = info.isDirectory() ? 'a folder' : info.isSymbolicLink() ? 'a symbolic link'
    : info.isCharacterDevice() || info.isBlockDevice() ? 'a device' : info.isFIFO() ? 'a FIFO' : 'a socket';
  return `${file} is ${kind}, not a file (writing would replace it)`;
}

function statOrUndefined(file: string, stat: typeof statSync): Stats | undefined {
  try {
    return stat(file);
  } catch {
    return undefined;
  }
}

export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  await writeFileAtomicWith(file, (handle) => handle.writeFile(bytes));
}

/** writeFileAtomic for content written piece by piece: `fill` writes into the opened temporary file. */
export async function writeFileAtomicWith<T>(file: string, fill: (handle: FileHandle) => Promise<T>): Promise<T> {
  const problem = outputProblem(file);
  if (problem !== undefined) fail('BAD_ARGUMENT', problem);
  const temporary = `${file}.partial-${process.pid}`;
  guard(temporary);
  try {
    const handle = await open(temporary, 'wx');   // never through a link planted at the temporary name
    let result: T;
    try {
      result = await fill(handle);
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
    return result;
  } catch (e) {
    await rm(temporary, { force: true });
    throw e;
  } finally {
    release(temporary);
  }
}

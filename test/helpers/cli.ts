// Runs the vimedge CLI from its TypeScript sources (src/cli/main.ts through tsx) in a child process, as a
// user's shell would, and checks what a refusal looks like to that user.
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import * as assert from 'uvu/assert';

export interface CliOptions {
  /** Modules imported into the process before the CLI starts: test doubles of fs or net, import tracers. */
  preloads?: string[];
  env?: NodeJS.ProcessEnv;
  /** Milliseconds before a run to the end is killed as hung. */
  timeout?: number;
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Longer than any CLI run in the tests takes on a loaded machine: a run still going has hung. */
const HUNG_MS = 120_000;

function nodeArgs(args: string[], preloads: string[] = []): string[] {
  return ['--import', 'tsx', ...preloads.flatMap((p) => ['--import', pathToFileURL(p).href]), 'src/cli/main.ts', ...args];
}

/** `vimedge ARGS`, run to the end. */
export function vimedge(args: string[], options: CliOptions = {}): CliRun {
  const r = spawnSync(process.execPath, nodeArgs(args, options.preloads),
    { encoding: 'utf8', env: options.env, timeout: options.timeout ?? HUNG_MS });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `vimedge ARGS` started with stdout and stderr piped, for a test that acts while it runs. */
export function startVimedge(args: string[], options: CliOptions = {}): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, nodeArgs(args, options.preloads), { env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function noStackTrace(stderr: string): void {
  assert.not.match(stderr, /\n\s+at /, `stack trace printed:\n${stderr}`);
}

/** The CLI refused: exit code 1 for bad input (2 for misuse: src/cli/exit-codes.ts), stderr matching `pattern`, no stack trace. */
export function refused(r: CliRun, pattern: RegExp, code: 1 | 2 = 1): void {
  assert.is(r.code, code, r.stderr);
  assert.match(r.stderr, pattern);
  noStackTrace(r.stderr);
}

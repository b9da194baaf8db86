// Runs a snippet of TypeScript in a child process (node + tsx) and reports what it cost: memory and time are
// part of the contract for hostile input, and a runaway must not take the test process down with it.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface Measured {
  /** What the snippet returned (JSON), or the error it threw; undefined if the child was killed or crashed. */
  value?: unknown;
  error?: { name: string; code?: string; message: string };
  /** Peak resident memory of the whole child (node + tsx + the snippet), MiB. */
  maxRssMiB: number;
  /** Milliseconds the snippet ran (not the child's start-up). */
  ms: number;
  /** The child's own output when it did not report (killed at the time limit, crashed). */
  killed?: string;
}

const ROOT = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'vimedge-measured-'));
let scripts = 0;

/**
 * `imports` (lines of `import ... from '<src/...>'`, paths relative to the repository root) and an async
 * function `body` run in a fresh child; killed after `limitMs`.
 */
// The child reports VmHWM, not resourceUsage().maxRSS: Linux carries ru_maxrss over exec, so a child of a
// large test process would report its parent's peak; VmHWM belongs to the child's own address space.
export function measured(imports: string, body: string, limitMs = 60_000): Promise<Measured> {
  const file = path.join(dir, `snippet-${scripts++}.mts`);
  writeFileSync(file, `${imports.replaceAll("from 'src/", `from '${ROOT}/src/`)}
import { readFileSync as readProcFile } from 'node:fs';
const started = performance.now();
let outcome: object;
try {
  outcome = { value: await (async () => { ${body} })() };
} catch (e) {
  const err = e as { name: string; code?: string; message: string };
  outcome = { error: { name: err.name, code: err.code, message: err.message } };
}
const hwmKiB = Number(/^VmHWM:\\s+(\\d+) kB$/m.exec(readProcFile('/proc/self/status', 'utf8'))?.[1]);
console.log(JSON.stringify({ ...outcome, ms: performance.now() - started, maxRssMiB: hwmKiB / 1024 }));
process.exit(0);
`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('close', () => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as Measured);
      } catch {
        resolve({ maxRssMiB: Infinity, ms: Infinity, killed: out.slice(-2000) });
      }
    });
  });
}

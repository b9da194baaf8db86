/**
 * The fuzz suites (test/fuzz-*.test.ts) with a larger budget and a fresh seed: each parser's properties share
 * `--runs` cases between them (CI runs about a thousand per parser with a fixed seed).
 *
 *   node --import tsx bench/fuzz.ts [--runs 20000] [--seed N] [--only pth,safetensors,vimq,images,idx] [--json FILE]
 *
 * Each suite runs in its own process. A failure prints fast-check's counterexample with the seed and path
 * that replay it: VIMEDGE_FUZZ_SEED=<seed> VIMEDGE_FUZZ_RUNS=<runs> node --import tsx node_modules/uvu/bin.js
 * test '^fuzz-<parser>\.test\.ts$'. The exit status is non-zero if any suite failed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const arg = (name: string, fallback?: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const runs = Number(arg('runs', '20000'));
const seed = Number(arg('seed', String(Math.floor(Math.random() * 2 ** 31))));
const available = readdirSync(path.join(root, 'test')).map((f) => /^fuzz-(.+)\.test\.ts$/.exec(f)?.[1]).filter((p): p is string => !!p);
const only = arg('only')?.split(',') ?? available;
const scratch = mkdtempSync(path.join(tmpdir(), 'vimedge-fuzz-'));
const report = path.join(scratch, 'report.jsonl');

if (!(runs > 0)) throw new Error(`--runs must be a positive number, got ${arg('runs')}`);
console.log(`fuzz: seed ${seed}, ${runs} cases per parser, suites: ${only.join(', ')}`);
const failed: string[] = [];
for (const parser of only) {
  if (!available.includes(parser)) {
    console.log(`fuzz ${parser}: no test/fuzz-${parser}.test.ts`);
    failed.push(parser);
    continue;
  }
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'node_modules/uvu/bin.js', 'test', `^fuzz-${parser}\\.test\\.ts$`], {
    cwd: root, encoding: 'utf8', maxBuffer: 256 << 20,
    env: { ...process.env, VIMEDGE_FUZZ_RUNS: String(runs), VIMEDGE_FUZZ_SEED: String(seed), VIMEDGE_FUZZ_REPORT: report, FORCE_COLOR: '0' },
  });
  const out = `${r.stdout}${r.stderr}`;
  const ok = r.status === 0 && /Passed:\s+(\d+)/.exec(out)?.[1] === /Total:\s+(\d+)/.exec(out)?.[1];
  if (!ok) {
    failed.push(parser);
    console.log(out.split('\n').filter((l) => !/^\s+at /.test(l)).join('\n'));
  }
  console.log(`fuzz ${parser}: ${ok ? 'passed' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

const lines = existsSync(report) ? readFileSync(report, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
console.log('\nparser        cases   accepted   refused   slowest   max ArrayBuffer growth   seconds');
for (const l of lines) {
  console.log(`${l.parser.padEnd(12)} ${String(l.cases).padStart(7)} ${String(l.accepted).padStart(10)} ${String(l.refused).padStart(9)} `
    + `${`${l.maxCaseMs.toFixed(0)} ms`.padStart(9)} ${`${(l.maxArrayBufferGrowth / 2 ** 20).toFixed(1)} MB`.padStart(24)} ${l.seconds.toFixed(0).padStart(9)}`);
}
const total = lines.reduce((n, l) => n + l.cases, 0);
console.log(`total: ${total} cases, seed ${seed}, ${failed.length ? `FAILED: ${failed.join(', ')}` : 'no failures'}`);
const json = arg('json');
if (json) writeFileSync(json, JSON.stringify({ seed, runs, failed, suites: lines }, null, 1));
rmSync(scratch, { recursive: true, force: true });
process.exit(failed.length ? 1 : 0);

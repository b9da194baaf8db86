/**
 * The long soak: 10,000 classifications in one process by default, memory sampled after full garbage
 * collections (test/helpers/soak.ts, which test/soak.test.ts runs for 1,000 in CI). Prints the slopes of RSS,
 * V8 heap and ArrayBuffer memory per classification and the WebAssembly memory; --json writes every sample.
 *
 *   node --import tsx bench/soak.ts [--count 10000] [--model FILE] [--concurrency 4] [--every 100] [--warmup 500] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { runSoak, summary } from '../test/helpers/soak.js';

const arg = (name: string, fallback?: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const result = await runSoak({
  count: Number(arg('count', '10000')), model: arg('model'), concurrency: Number(arg('concurrency', '4')),
  every: Number(arg('every', '100')), warmup: Number(arg('warmup', '500')), log: (line) => console.error(line),
});
console.log(summary(result));
const json = arg('json');
if (json) writeFileSync(json, JSON.stringify(result, null, 1));

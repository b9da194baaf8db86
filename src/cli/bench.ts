/** `vimedge bench <model>`: single-image latency on a synthetic input, after warm-up. */
import { Command } from 'commander';
import { performance } from 'node:perf_hooks';
import { defaultModelPath } from '../hosts/node.js';
import { positiveInt, threadsOption, maxMemoryOption } from './args.js';
import type { RawImage } from '../preprocess/raw-image.js';

/**
 * The input `vimedge bench` times: a fixed pseudo-random image at the model's resize size (resizing is then a
 * no-op); the work per image does not depend on the values.
 */
export function benchImage(p: { resize: number; channels: 1 | 3 }): RawImage {
  return { width: p.resize, height: p.resize, channels: p.channels,
    data: Uint8Array.from({ length: p.channels * p.resize * p.resize }, (_, i) => 128 + 127 * Math.sin(i * 12.9898)) };
}

/** The q-quantile of ascending times, as every benchmark here reports it: sorted[min(n - 1, floor(q n))]. */
export function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export function benchCommand(): Command {
  return new Command('bench')
    .description('time single-image classification (synthetic input, after warm-up)')
    .argument('[model]', 'model file', defaultModelPath())
    .option('--runs <n>', 'timed runs', positiveInt('--runs'), 20)
    .option('--warmup <n>', 'untimed runs first', positiveInt('--warmup'), 3)
    .option('--json', 'print one JSON object')
    .addOption(threadsOption())
    .addOption(maxMemoryOption())
    .action(async (file: string, opts) => {
      const { loadClassifier } = await import('../index.js');
      const started = performance.now();
      const classifier = await loadClassifier(file, { threads: opts.threads, maxMemory: opts.maxMemory });
      const input = benchImage(classifier.info.preprocess);
      await classifier.logits(input);
      const coldStart = performance.now() - started;
      for (let i = 1; i < opts.warmup; i++) await classifier.logits(input);
      const times: number[] = [];
      for (let i = 0; i < opts.runs; i++) {
        const t0 = performance.now();
        await classifier.logits(input);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const result = {
        median_ms: percentile(times, 0.5), p90_ms: percentile(times, 0.9), cold_start_ms: coldStart,
        peak_memory_bytes: classifier.info.memoryBytes, threads: opts.threads, runs: opts.runs,
        peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
      };
      if (opts.json) console.log(JSON.stringify(result));
      else console.log(`${file}: median ${result.median_ms.toFixed(1)} ms, p90 ${result.p90_ms.toFixed(1)} ms, ` +
        `cold start ${coldStart.toFixed(0)} ms, wasm memory ${(result.peak_memory_bytes / 2 ** 20).toFixed(1)} MiB, ${opts.threads} thread${opts.threads > 1 ? 's' : ''}, ${opts.runs} runs`);
      classifier.dispose();
    });
}

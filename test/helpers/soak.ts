// The soak: many classifications in one process, memory sampled as it goes, to show that a long-running
// service stays flat. Every request decodes an encoded image (sharp), preprocesses it and runs the model;
// every tenth is a damaged file that must be refused. Each image's answer must stay bit-identical across
// repetitions. Reported: the least-squares slope (bytes per classification) of RSS, of the V8 heap and of
// ArrayBuffer memory over the second half of the run, each sampled after a full garbage collection, and the
// WebAssembly memory at warm-up and at the end. test/soak.test.ts runs a short soak in CI, bench/soak.ts the
// long one.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pathToFileURL } from 'node:url';
import { loadClassifier } from '../../src/index.js';
import { VimedgeError } from '../../src/errors.js';
import { imageFixture } from './image-reference.js';

export interface SoakOptions {
  count: number;
  model?: string;
  concurrency?: number;
  /** Take a memory sample every this many classifications. */
  every?: number;
  /** Requests before the first sample (caches fill: libvips keeps up to 50 MB of recent operations). */
  warmup?: number;
  log?: (line: string) => void;
}

export interface Sample {
  done: number;
  rss: number;
  heapUsed: number;
  arrayBuffers: number;
  external: number;
  wasm: number;
}

export interface SoakResult {
  model: string;
  count: number;
  classified: number;
  refused: number;
  seconds: number;
  perSecond: number;
  /** Bytes per classification, least squares over the second half of the samples. */
  slope: { rss: number; heapUsed: number; arrayBuffers: number; external: number };
  wasm: { atWarmup: number; atEnd: number; max: number };
  rss: { atWarmup: number; atEnd: number; max: number };
  samples: Sample[];
}

const IMAGES = ['chelsea_451x300.jpg', 'coffee_cmyk_180x120.jpg', 'rocket_rgb16_97x73.png', 'camera_grey16_90x70.png',
  'chelsea_anim_160x107.gif', 'coffee_transparent_offset_120x90.gif', 'motorcycle_187x126.webp', 'rocket_130x87.tif',
  'astronaut_rgba_213x161.png', 'retina_444_progressive_333x250.jpg', 'hubble_900x120.jpg', 'motorcycle_tiny_50x40.png'];

/** A full collection when the process runs without --expose-gc (flags set at run time take effect for new contexts). */
function collector(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Least-squares slope of y over x. */
export function slope(x: number[], y: number[]): number {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    num += (x[i] - mx) * (y[i] - my);
    den += (x[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const { count, model = 'test/fixtures/small/small/model.pth', concurrency = 4, every = 100, warmup = 500, log = () => {} } = options;
  const gc = collector();
  const images = IMAGES.map(imageFixture);
  // Damaged copies: truncated, and a header claiming 50000x50000 (refused before decoding).
  const damaged = [images[0].subarray(0, images[0].length >> 1), images[2].subarray(0, 200), new Uint8Array(64)];
  const classifier = await loadClassifier(new URL(model, pathToFileURL(`${process.cwd()}/`)).pathname);
  const expected = new Map<number, Float32Array>();
  const samples: Sample[] = [];
  let classified = 0, refused = 0, done = 0;

  const sample = async () => {
    // Two collections around a turn of the event loop: Buffers from sharp are released by finalizers that
    // the first collection only schedules.
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    const m = process.memoryUsage();
    samples.push({ done, rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, external: m.external, wasm: classifier.info.memoryBytes });
  };

  const one = async (i: number) => {
    if (i % 10 === 9) {
      try {
        await classifier.classify(damaged[i % damaged.length]);
      } catch (e) {
        if (!(e instanceof VimedgeError)) throw e;
        refused++;
        return;
      }
      throw new Error(`request ${i}: a damaged image was classified`);
    }
    const which = i % images.length;
    const logits = await classifier.logits(images[which]);
    const first = expected.get(which);
    if (!first) expected.set(which, logits);
    else if (!logits.every((v, k) => Object.is(v, first[k]))) throw new Error(`request ${i}: image ${IMAGES[which]} answered differently`);
    classified++;
  };

  // Warm-up: every image, damaged ones included, until caches (libvips, V8 code, malloc arenas) are filled.
  for (let i = 0; i < Math.max(warmup, IMAGES.length * 10); i += concurrency) {
    await Promise.all(Array.from({ length: concurrency }, (_, k) => one(i + k)));
  }
  classified = refused = 0;
  await sample();
  const warm = samples[0];
  const t0 = performance.now();
  while (done < count) {
    const batch = Math.min(concurrency, count - done);
    await Promise.all(Array.from({ length: batch }, (_, k) => one(done + k)));
    done += batch;
    if (done % every === 0 || done === count) {
      await sample();
      if (done % (every * 10) === 0) log(`soak: ${done}/${count}, RSS ${(samples.at(-1)!.rss / 2 ** 20).toFixed(1)} MB`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const half = samples.slice(1).slice(Math.floor((samples.length - 1) / 2));
  const x = half.map((s) => s.done);
  const result: SoakResult = {
    model, count, classified, refused, seconds, perSecond: count / seconds,
    slope: {
      rss: slope(x, half.map((s) => s.rss)),
      heapUsed: slope(x, half.map((s) => s.heapUsed)),
      arrayBuffers: slope(x, half.map((s) => s.arrayBuffers)),
      external: slope(x, half.map((s) => s.external)),
    },
    wasm: { atWarmup: warm.wasm, atEnd: samples.at(-1)!.wasm, max: Math.max(...samples.map((s) => s.wasm)) },
    rss: { atWarmup: warm.rss, atEnd: samples.at(-1)!.rss, max: Math.max(...samples.map((s) => s.rss)) },
    samples,
  };
  classifier.dispose();
  return result;
}

export function summary(r: SoakResult): string {
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;
  return [
    `soak: ${r.count} requests (${r.classified} classified, ${r.refused} damaged images refused) with ${r.model} in ${r.seconds.toFixed(1)} s (${r.perSecond.toFixed(0)}/s)`,
    `  slope over the second half, bytes per classification: RSS ${r.slope.rss.toFixed(1)}, V8 heap ${r.slope.heapUsed.toFixed(2)}, `
      + `ArrayBuffers ${r.slope.arrayBuffers.toFixed(2)}, external ${r.slope.external.toFixed(2)}`,
    `  WebAssembly memory: ${mb(r.wasm.atWarmup)} after warm-up, ${mb(r.wasm.atEnd)} at the end (max ${mb(r.wasm.max)})`,
    `  RSS: ${mb(r.rss.atWarmup)} after warm-up, ${mb(r.rss.atEnd)} at the end (max ${mb(r.rss.max)})`,
  ].join('\n');
}

/**
 * Threads on the web platform: Web Workers around the caller, each with its own instance of the kernels'
 * threads build on the model's shared WebAssembly memory, handed work by the pool of shared-pool.ts. Needs
 * SharedArrayBuffer, which browsers give only to cross-origin isolated pages (COOP + COEP headers), and
 * Web Workers (browsers, Deno; not workerd). In a browser each worker runs thread-worker.ts, a module file
 * next to the bundle, so that a strict Content-Security-Policy (worker-src 'self') allows it; Deno would
 * need read permission for that file, so there the worker is the loop's source text behind a blob: URL.
 */
import { instantiateKernels } from '../model/kernels.js';
import type { Threads } from '../model/model-file.js';
import { MAX_PAGES, startPool, workerLoop, type PoolWorker, type SharedMemoryPool } from './shared-pool.js';
import { fail } from '../errors.js';

/** The few members of a Web Worker used here (no DOM typings in this package). */
interface WebWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: { message?: string; preventDefault?(): void }) => void) | null;
}
type WorkerConstructor = new (url: URL | string, options: { type: 'module' }) => WebWorker;

/** Why this realm cannot run threads, or undefined when it can. */
function missingForThreads(): string | undefined {
  const g = globalThis as { crossOriginIsolated?: boolean; Worker?: unknown };
  if (typeof g.Worker !== 'function') return 'this host has no Web Workers';
  if (g.crossOriginIsolated === false || typeof SharedArrayBuffer !== 'function') {
    return 'the page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and ' +
      'Cross-Origin-Embedder-Policy: require-corp), so it has no SharedArrayBuffer';
  }
  return undefined;
}

/**
 * The threads build `module` on a fresh shared memory, with threads - 1 Web Workers around it, each
 * started from `workerUrl` (dist/browser/vimedge-thread.js).
 */
export async function createWebThreads(threads: number, module: WebAssembly.Module, workerUrl: URL | string): Promise<Threads> {
  const missing = missingForThreads();
  if (missing) fail('BAD_ARGUMENT', `threads > 1 needs SharedArrayBuffer and Web Workers: ${missing}`);
  if (!WebAssembly.Module.imports(module).some((i) => i.kind === 'memory')) {
    fail('BAD_ARGUMENT', 'threads > 1 needs the kernels\' threads build (vimedge.mt.wasm) as wasm');
  }
  const memory = new WebAssembly.Memory({ initial: 32, maximum: MAX_PAGES, shared: true });
  const kernels = await instantiateKernels(module, memory);
  const Worker = (globalThis as unknown as { Worker: WorkerConstructor }).Worker;
  if ('Deno' in globalThis) {
    workerUrl = URL.createObjectURL(new Blob([`onmessage = (e) => { onmessage = null; (${workerLoop.toString()})(e.data, () => postMessage('ready')); close(); };`],
      { type: 'text/javascript' }));
  }
  let pool: SharedMemoryPool | undefined;
  pool = await startPool(module, memory, kernels, threads, (init) => new Promise<PoolWorker>((resolve, reject) => {
    const w = new Worker(workerUrl, { type: 'module' });
    w.onmessage = () => resolve({ terminate: () => w.terminate() });
    w.onerror = (e) => {
      e.preventDefault?.();
      const why = e.message ?? 'the worker failed to start';
      if (pool) pool.error = why;
      else reject(new Error(why));
    };
    w.postMessage(init);
  }).catch((e: Error) => fail('BAD_ARGUMENT', `cannot start a Web Worker from ${String(workerUrl)}: ${e.message}`)));
  return { kernels, pool };
}

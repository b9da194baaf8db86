/**
 * A Web Worker of web-threads.ts (bundled to dist/browser/vimedge-thread.js): waits for its WorkerInit,
 * then runs the pool's worker loop until the pool stops it.
 */
import { workerLoop, type WorkerInit } from './shared-pool.js';

const scope = globalThis as unknown as {
  onmessage: ((e: { data: WorkerInit }) => void) | null;
  postMessage(m: unknown): void;
  close(): void;
};
scope.onmessage = (e) => {
  scope.onmessage = null;
  workerLoop(e.data, () => scope.postMessage('ready'));
  scope.close();
};

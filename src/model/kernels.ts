/**
 * The WebAssembly kernels (assembly/) as the host sees them: raw exports taking byte offsets into the
 * module's memory. One instance per loaded model, so models never share or corrupt each other's memory.
 * Their signatures and the list of their names are generated from assembly/ by the build
 * (kernels.generated.ts), never written by hand.
 */
import { fail } from '../errors.js';
import { KERNEL_NAMES, type KernelName, type Kernels } from './kernels.generated.js';

export { KERNEL_NAMES, type KernelName, type Kernels };

type KernelFunction = (...args: number[]) => unknown;

/**
 * `kernels` with every kernel (KERNEL_NAMES) replaced by wrap(name, kernel), memory and heap_base kept:
 * the one way to stand between the host and the exports, to record calls for a thread (parallel.ts) or
 * to time them (bench/profile.ts).
 */
export function wrapKernels(kernels: Kernels, wrap: (name: KernelName, kernel: KernelFunction) => KernelFunction): Kernels {
  const wrapped: Record<string, unknown> = { memory: kernels.memory, heap_base: kernels.heap_base };
  for (const name of KERNEL_NAMES) wrapped[name] = wrap(name, kernels[name] as KernelFunction);
  return wrapped as unknown as Kernels;
}

/** Compiles once per wasm binary; instantiation per model is cheap. */
const compiled = new WeakMap<object, Promise<WebAssembly.Module>>();

/** `memory`: the shared memory the threads build (build/vimedge.mt.wasm) imports; the plain build owns its own. */
export async function instantiateKernels(wasm: Uint8Array | WebAssembly.Module, memory?: WebAssembly.Memory): Promise<Kernels> {
  let module: WebAssembly.Module;
  if (wasm instanceof WebAssembly.Module) {
    module = wasm;
  } else {
    let pending = compiled.get(wasm);
    if (!pending) compiled.set(wasm, pending = WebAssembly.compile(wasm as Uint8Array<ArrayBuffer>));
    module = await pending;
  }
  const instance = await WebAssembly.instantiate(module, memory ? { env: { memory } } : {});
  return instance.exports as unknown as Kernels;
}

/** Grows the module's memory so that `bytes` bytes are addressable. */
export function ensureMemory(k: Kernels, bytes: number): void {
  const have = k.memory.buffer.byteLength;
  if (bytes <= have) return;
  try {
    k.memory.grow(Math.ceil((bytes - have) / 65536));
  } catch (e) {
    fail('BAD_MODEL', `the model needs ${(bytes / 2 ** 20).toFixed(0)} MiB of WebAssembly memory, more than this host gives (${(e as Error).message})`);
  }
}

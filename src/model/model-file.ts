/**
 * Reading a model: any supported file (.vimq, .pth, .safetensors; told apart by isVimq) becomes its packed
 * form, the fp32 model the quantizer works on, or a ready VimModel. A checkpoint is converted in memory
 * (src/convert/), never through .vimq bytes.
 */
import { readVimq } from '../formats/vimq.js';
import { checkpointModel, type ConvertOptions } from '../convert/checkpoint.js';
import { packFloat, unpackFloat } from '../convert/pack.js';
import type { FloatModel } from '../convert/float-model.js';
import { isVimq, type ModelMetadata, type PackedModel } from './contract.js';
import type { VimConfig } from './config.js';
import { runStateBytes } from './run-state.js';
import { VimModel } from './vim-model.js';
import { instantiateKernels, type Kernels } from './kernels.js';
import type { ThreadPool } from './parallel.js';
import { fail } from '../errors.js';
import { checkModelMetadata } from './metadata-check.js';

/**
 * Any supported model bytes -> its metadata and data section, checked (metadata-check.ts) before any caller
 * sizes, loops over or prints anything from it; options apply to checkpoints.
 */
export async function readModel(bytes: Uint8Array, file: string, options: ConvertOptions = {}): Promise<PackedModel> {
  const packed = isVimq(bytes) ? await readVimq(bytes, file) : packFloat(checkpointModel(bytes, file, options));
  checkModelMetadata(packed.metadata, packed.data, file);
  return packed;
}

/**
 * An fp32 model file (.vimq or checkpoint) -> the model the quantizer works on; options apply to checkpoints.
 * Refused over maxMemory (checkMemory), since calibration runs it on the fp32 kernels.
 */
export async function readFloatModel(bytes: Uint8Array, file: string, options: ConvertOptions = {},
                                     maxMemory = DEFAULT_MAX_MEMORY): Promise<FloatModel> {
  const m = isVimq(bytes) ? unpackFloat(await readModel(bytes, file), file) : checkpointModel(bytes, file, options);
  checkMemory([...m.tensors.values()].reduce((n, t) => n + t.byteLength, 0), m.metadata.config, file, maxMemory);
  return m;
}

/** Kernels on shared memory and the pool of workers around them (a host's threads, e.g. node-threads.ts). */
export interface Threads {
  kernels: Kernels;
  pool: ThreadPool;
}

export interface LoadedModel {
  metadata: ModelMetadata;
  model: VimModel;
}

async function instantiate({ metadata, data }: PackedModel, wasm: Uint8Array | WebAssembly.Module,
                           threads?: Threads): Promise<VimModel> {
  return new VimModel(metadata.config, threads?.kernels ?? await instantiateKernels(wasm), metadata.tensors, data,
    { activationBits: metadata.quantization?.activationBits, pool: threads?.pool });
}

/** Default of LoadOptions.maxMemory: far above any Vim classifier at 224 px, far below what a host can give. */
export const DEFAULT_MAX_MEMORY = 2 ** 31;

/**
 * Refuses a model whose weights and planned activations need more than maxMemory bytes of WebAssembly
 * memory, before any is allocated: a small file may declare a huge input.
 */
function checkMemory(weightBytes: number, config: VimConfig, file: string, maxMemory: number, threads?: number): void {
  const planned = weightBytes + runStateBytes(config, threads);
  if (planned > maxMemory) {
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    fail('BAD_MODEL', `${file}: needs ${mib(planned)} of WebAssembly memory (weights + activations), over the maxMemory limit of ${mib(maxMemory)}`);
  }
}

/**
 * Any supported model bytes (.vimq, .pth, .safetensors) -> a model ready to run; options apply to checkpoints.
 * Refused over maxMemory (checkMemory).
 */
export async function loadModel(bytes: Uint8Array, file: string, wasm: Uint8Array | WebAssembly.Module,
                                options: ConvertOptions = {}, threads?: Threads,
                                maxMemory = DEFAULT_MAX_MEMORY): Promise<LoadedModel> {
  const packed = await readModel(bytes, file, options);
  checkMemory(packed.data.length, packed.metadata.config, file, maxMemory, threads?.pool.threads);
  return { metadata: packed.metadata, model: await instantiate(packed, wasm, threads) };
}

/**
 * The fp32 model in memory on the fp32 kernels, without writing a file (calibration, equivalence tests); on
 * `threads`, each image is split over them, with the same results.
 */
export async function instantiateFloat(m: FloatModel, wasm: Uint8Array | WebAssembly.Module, threads?: Threads): Promise<VimModel> {
  return instantiate(packFloat(m), wasm, threads);
}

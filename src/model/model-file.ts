/**
 * Reading a model: any supported file (.vimq, .pth, .safetensors; told apart by isVimq) becomes its packed
 * form, the fp32 model the quantizer works on, or a ready VimModel. A checkpoint is converted in memory
 * (src/convert/), never through .vimq bytes.
 */
import { readVimq } from '../formats/vimq.js';
import { checkpointModel, type ConvertOptions } from '../convert/checkpoint.js';
import { packFloat, unpackFloat } from '../convert/pack.js';
import type { FloatModel } from '../convert/float-model.js';
import { BIT_WIDTHS, isVimq, type ModelMetadata, type PackedModel } from './contract.js';
import { VimModel } from './vim-model.js';
import { instantiateKernels, type Kernels } from './kernels.js';
import type { ThreadPool } from './parallel.js';
import { fail } from '../errors.js';
import { checkModelMetadata } from './metadata-check.js';

/** Any supported model bytes -> its metadata and data section; options apply to checkpoints. */
export async function readModel(bytes: Uint8Array, file: string, options: ConvertOptions = {}): Promise<PackedModel> {
  return isVimq(bytes) ? readVimq(bytes, file) : packFloat(checkpointModel(bytes, file, options));
}

/** An fp32 model file (.vimq or checkpoint) -> the model the quantizer works on; options apply to checkpoints. */
export async function readFloatModel(bytes: Uint8Array, file: string, options: ConvertOptions = {}): Promise<FloatModel> {
  return isVimq(bytes) ? unpackFloat(await readVimq(bytes, file), file) : checkpointModel(bytes, file, options);
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

/** Any supported model bytes (.vimq, .pth, .safetensors) -> a model ready to run; options apply to checkpoints. */
export async function loadModel(bytes: Uint8Array, file: string, wasm: Uint8Array | WebAssembly.Module,
                                options: ConvertOptions = {}, threads?: Threads): Promise<LoadedModel> {
  const packed = await readModel(bytes, file, options);
  const { metadata, data } = packed;
  checkModelMetadata(metadata, data, file);
  if (!['f32', ...BIT_WIDTHS].includes(metadata.weights)) {
    fail('BAD_MODEL_FILE', `${file}: weights '${metadata.weights}' not supported by this runtime`);
  }
  return { metadata, model: await instantiate(packed, wasm, threads) };
}

/**
 * The fp32 model in memory on the fp32 kernels, without writing a file (calibration, equivalence tests); on
 * `threads`, each image is split over them, with the same results.
 */
export async function instantiateFloat(m: FloatModel, wasm: Uint8Array | WebAssembly.Module, threads?: Threads): Promise<VimModel> {
  return instantiate(packFloat(m), wasm, threads);
}

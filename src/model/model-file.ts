/**
 * Reading a model: any supported file (.vimq, .pth, .safetensors; told apart by isVimq) becomes its packed
 * form, the fp32 model the quantizer works on, or a ready VimModel. A checkpoint is converted in memory
 * (src/convert/), never through .vimq bytes.
 */
import { checkVimqChecksum, readVimq, readVimqHeader, readVimqMetadata, VIMQ_HEADER_BYTES } from '../formats/vimq.js';
import { checkpointModel, type ConvertOptions } from '../convert/checkpoint.js';
import { packFloat, packFloatPieces, unpackFloat } from '../convert/pack.js';
import type { FloatModel } from '../convert/float-model.js';
import { isVimq, type ModelMetadata, type PackedModel } from './contract.js';
import type { VimConfig } from './config.js';
import { runStateBytes } from './run-state.js';
import { VimModel, weightArena } from './vim-model.js';
import { instantiateKernels, type Kernels } from './kernels.js';
import type { ThreadPool } from './parallel.js';
import { fail, VimedgeError } from '../errors.js';
import { checkModelMetadata, checkModelStructure } from './metadata-check.js';

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

function newModel(metadata: ModelMetadata, kernels: Kernels, data: Uint8Array, threads?: Threads): VimModel {
  return new VimModel(metadata.config, kernels, metadata.tensors, data,
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
 * A model ready to run, its weights put in place by `fill` (straight into the kernels' memory: the weights
 * exist there once, and a copy outside it is the caller's choice) and checked there. The metadata is
 * checked first, then its memory (checkMemory), before any is allocated.
 */
async function placeModel(metadata: ModelMetadata, dataBytes: number, file: string, wasm: Uint8Array | WebAssembly.Module,
                          threads: Threads | undefined, maxMemory: number,
                          fill: (arena: Uint8Array) => Promise<void>): Promise<LoadedModel> {
  checkModelStructure(metadata, dataBytes, file);
  checkMemory(dataBytes, metadata.config, file, maxMemory, threads?.pool.threads);
  const kernels = threads?.kernels ?? await instantiateKernels(wasm);
  const arena = weightArena(metadata.config, kernels, dataBytes);
  await fill(arena);
  checkModelMetadata(metadata, arena, file);
  return { metadata, model: newModel(metadata, kernels, arena, threads) };
}

/**
 * Any supported model bytes (.vimq, .pth, .safetensors) -> a model ready to run; options apply to checkpoints,
 * whose tensors are packed one at a time into the kernels' memory (no packed copy beside the file).
 */
export async function loadModel(bytes: Uint8Array, file: string, wasm: Uint8Array | WebAssembly.Module,
                                options: ConvertOptions = {}, threads?: Threads,
                                maxMemory = DEFAULT_MAX_MEMORY): Promise<LoadedModel> {
  if (isVimq(bytes)) {
    const { metadata, data } = await readVimq(bytes, file);
    return placeModel(metadata, data.length, file, wasm, threads, maxMemory, async (arena) => arena.set(data));
  }
  const { metadata, data } = packFloatPieces(checkpointModel(bytes, file, options));
  return placeModel(metadata, data.bytes, file, wasm, threads, maxMemory, async (arena) => {
    for (const piece of data.pieces) arena.set(piece.bytes, piece.offset);
  });
}

/** A file read piece by piece (a host's file handle, e.g. src/hosts/node.ts withFileChecked). */
export interface FileReader {
  size: number;
  /** Fills `into` from byte `position` of the file; a file that ends early fails. */
  read(into: Uint8Array, position: number): Promise<void>;
}

/**
 * loadModel for a file read piece by piece: a .vimq's data section is read straight into the kernels'
 * memory and its checksum verified there, so that the weights never also exist as the file's bytes. A
 * checkpoint, or a .vimq whose header or metadata is refused, is read whole and goes through loadModel
 * (which names the problem as it always does).
 */
export async function loadModelFrom(reader: FileReader, file: string, wasm: Uint8Array | WebAssembly.Module,
                                    options: ConvertOptions = {}, threads?: Threads,
                                    maxMemory = DEFAULT_MAX_MEMORY): Promise<LoadedModel> {
  const whole = async () => {
    const bytes = new Uint8Array(reader.size);
    await reader.read(bytes, 0);
    return loadModel(bytes, file, wasm, options, threads, maxMemory);
  };
  const start = new Uint8Array(Math.min(reader.size, VIMQ_HEADER_BYTES));
  await reader.read(start, 0);
  if (!isVimq(start)) return whole();
  let metadata: ModelMetadata, head: Uint8Array;
  try {
    const header = readVimqHeader(start, reader.size, file);
    head = new Uint8Array(header.dataOffset);
    await reader.read(head, 0);
    metadata = readVimqMetadata(head, header, reader.size, file);
  } catch (e) {
    if (e instanceof VimedgeError && e.code === 'BAD_MODEL_FILE') return whole();
    throw e;
  }
  return placeModel(metadata, reader.size - head.length, file, wasm, threads, maxMemory, async (arena) => {
    await reader.read(arena, head.length);
    await checkVimqChecksum(head, arena, file);
  });
}

/**
 * The fp32 model in memory on the fp32 kernels, without writing a file (calibration, equivalence tests); on
 * `threads`, each image is split over them, with the same results.
 */
export async function instantiateFloat(m: FloatModel, wasm: Uint8Array | WebAssembly.Module, threads?: Threads): Promise<VimModel> {
  const { metadata, data } = packFloatPieces(m);
  const kernels = threads?.kernels ?? await instantiateKernels(wasm);
  const arena = weightArena(metadata.config, kernels, data.bytes);
  for (const piece of data.pieces) arena.set(piece.bytes, piece.offset);
  return newModel(metadata, kernels, arena, threads);
}

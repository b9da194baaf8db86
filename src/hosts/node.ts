/** Node host: model files from disk, images decoded with sharp, the shipped default model. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Classifier, type Classification, type ClassifyOptions } from '../classifier.js';
import { decodeImageBytes, type DecodeOptions } from './node-decode.js';
import { packageRoot, readKernelWasm } from './node-wasm.js';
import { loadModel } from '../model/model-file.js';
import { fail } from '../errors.js';

export const DEFAULT_MODEL = 'models/vim-fmnist.vimq';

export function defaultModelPath(): string {
  return path.join(packageRoot(), DEFAULT_MODEL);
}

export async function readFileChecked(file: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    return fail(what === 'image' ? 'BAD_IMAGE' : 'BAD_ARGUMENT', `${file}: ${why}`);
  }
}

export class NodeClassifier extends Classifier {
  /** Decodes an image file or its bytes with sharp and classifies it. */
  async classify(image: string | Uint8Array, options: ClassifyOptions & DecodeOptions = {}): Promise<Classification> {
    const name = typeof image === 'string' ? image : 'image';
    const bytes = typeof image === 'string' ? await readFileChecked(image, 'image') : image;
    return this.classifyPixels(await decodeImageBytes(bytes, name, options), options);
  }
}

/** Loads a .vimq, .pth or .safetensors model (a path or its bytes); the default model when omitted. */
export async function loadClassifier(source: string | Uint8Array = defaultModelPath()): Promise<NodeClassifier> {
  const name = typeof source === 'string' ? source : 'model';
  const bytes = typeof source === 'string' ? await readFileChecked(source, 'model') : source;
  const { metadata, model } = await loadModel(bytes, name, await readKernelWasm());
  return new NodeClassifier(metadata, model);
}

/**
 * Stored tensor layouts (docs/FORMAT.md), both ways: fp32 Linear and patch-conv weights to and from 'kn8',
 * int8 / int4 codes to the 'q8' / 'q4g64' panels, and tensors placed at 64-aligned offsets of one data
 * section. Every writer (checkpoint conversion, quantization) lays its tensors out through layoutTensors.
 */
import { alignUp, BLOB_ALIGN, layoutBytes, Q4_GROUP, runtimeTensors, type ModelMetadata, type PackedModel,
  type RuntimeTensor, type TensorEntry } from '../model/contract.js';
import type { DataPieces } from '../formats/vimq.js';
import { fail } from '../errors.js';
import { modelPlan, type FloatModel } from './float-model.js';

/**
 * Wp[k, n] = W[n, k] with rows padded to a multiple of 8 (W given as [N, K] row-major); into `scratch` when
 * it is large enough (a writer that packs one tensor at a time reuses one buffer), else a fresh array.
 */
export function packKn8(w: Float32Array, n: number, k: number, scratch?: Float32Array): Float32Array {
  const np = alignUp(n, 8);
  const out = scratch && scratch.length >= k * np ? scratch.subarray(0, k * np).fill(0) : new Float32Array(k * np);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) out[j * np + i] = w[i * k + j];
  }
  return out;
}

/** W [N, K] from its kn8 form Wp [K, roundUp(N, 8)] (the inverse of packKn8). */
export function unpackKn8(wp: Float32Array, n: number, k: number): Float32Array {
  const np = wp.length / k;
  const w = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) w[i * k + j] = wp[j * np + i];
  return w;
}

/** q8: panels of 4 outputs; block kk/4 of a panel holds codes [4p + r, kk + i] at byte 4r + i. */
export function packQ8(codes: Int8Array, n: number, k: number): Uint8Array {
  const kp = alignUp(k, 16);
  const out = new Int8Array(alignUp(n, 4) * kp);
  for (let j = 0; j < n; j++) {
    const panel = (j >> 2) * kp * 4, r = j & 3;
    for (let kk = 0; kk < k; kk++) out[panel + (kk >> 2) * 16 + 4 * r + (kk & 3)] = codes[j * k + kk];
  }
  return new Uint8Array(out.buffer);
}

/**
 * q4g64: panels of 4 outputs; block c (inputs 8c..8c+7) of a panel holds code [4p + r, 8c + i] in the low
 * nibble and [4p + r, 8c + 4 + i] in the high nibble of byte 4r + i, so the two nibble planes are q8 blocks.
 */
export function packQ4(codes: Int8Array, n: number, k: number): Uint8Array {
  const kp = alignUp(k, Q4_GROUP);
  const out = new Uint8Array(alignUp(n, 4) * kp / 2);
  for (let j = 0; j < n; j++) {
    const panel = (j >> 2) * kp * 2, r = j & 3;
    for (let kk = 0; kk < k; kk++) {
      const q = codes[j * k + kk];
      if (q < -8 || q > 7) throw new RangeError(`int4 code ${q} out of range`);
      const byte = panel + (kk >> 3) * 16 + 4 * r + (kk & 3);
      out[byte] |= (kk & 4) ? (q & 15) << 4 : q & 15;
    }
  }
  return out;
}

/** The tensor table: tensors at 64-aligned offsets in list order, and the data section's length. */
export function tensorTable(list: RuntimeTensor[]): { tensors: TensorEntry[]; dataBytes: number } {
  const tensors: TensorEntry[] = [];
  let offset = 0;
  for (const t of list) {
    const bytes = layoutBytes(t.shape, t.layout);
    tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, layout: t.layout, offset, bytes });
    offset = alignUp(offset + bytes, BLOB_ALIGN);
  }
  return { tensors, dataBytes: offset };
}

/** Each tensor's stored bytes at its table offset, made one at a time as the pieces are taken. */
function* storedPieces(list: RuntimeTensor[], tensors: TensorEntry[], storedBytes: (t: RuntimeTensor) => Uint8Array):
    Generator<{ offset: number; bytes: Uint8Array }> {
  for (const [i, t] of list.entries()) {
    const bytes = storedBytes(t);
    if (bytes.length !== tensors[i].bytes) fail('BAD_MODEL', `tensor ${t.name}: ${bytes.length} bytes, expected ${tensors[i].bytes}`);
    yield { offset: tensors[i].offset, bytes };
  }
}

/** Places tensors at 64-aligned offsets in list order and fills each with its stored bytes. */
export function layoutTensors(list: RuntimeTensor[], storedBytes: (t: RuntimeTensor) => Uint8Array):
    { tensors: TensorEntry[]; data: Uint8Array } {
  const { tensors, dataBytes } = tensorTable(list);
  const data = new Uint8Array(dataBytes);
  for (const { offset, bytes } of storedPieces(list, tensors, storedBytes)) data.set(bytes, offset);
  return { tensors, data };
}

/** The stored bytes of one fp32 tensor of the model (a kn8 one packed into `scratch` where it fits). */
export function floatBytes(m: FloatModel, t: RuntimeTensor, scratch?: Float32Array): Uint8Array {
  const values = m.tensors.get(t.name) ?? fail('BAD_MODEL', `tensor ${t.name} is missing`);
  const stored = t.layout === 'kn8' ? packKn8(values, t.shape[0], values.length / t.shape[0], scratch) : values;
  return new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength);
}

/** The fp32 model as the runtime stores it: its tensor table and data section. */
export function packFloat(m: FloatModel): PackedModel {
  const { tensors, data } = layoutTensors(runtimeTensors(m.metadata.config, modelPlan(m)), (t) => floatBytes(m, t));
  return { metadata: { ...m.metadata, tensors }, data };
}

/**
 * The fp32 model's metadata and its data section as pieces (writeVimqPieces), each tensor packed only when
 * its piece is taken, into one scratch buffer: writing a model this way holds one packed tensor, not a
 * second model (nor, until a garbage collection, one of each tensor). A piece's bytes are valid until the
 * next piece is taken.
 */
export function packFloatPieces(m: FloatModel): { metadata: ModelMetadata; data: DataPieces } {
  const list = runtimeTensors(m.metadata.config, modelPlan(m));
  const { tensors, dataBytes } = tensorTable(list);
  const scratch = new Float32Array(Math.max(0, ...tensors.filter((t) => t.layout === 'kn8').map((t) => t.bytes / 4)));
  return { metadata: { ...m.metadata, tensors }, data: { bytes: dataBytes, pieces: storedPieces(list, tensors, (t) => floatBytes(m, t, scratch)) } };
}

/**
 * An fp32 model's tensors back in their logical form, views of `data` where the layout is already logical
 * (keep it unchanged while the model is used; cloneModel before editing); a quantized one is refused
 * (quantizing twice compounds the error).
 */
export function unpackFloat({ metadata, data }: PackedModel, file: string): FloatModel {
  if (metadata.weights !== 'f32' || metadata.quantization !== null) {
    fail('BAD_ARGUMENT', `${file} is already quantized (${metadata.quantization?.method ?? metadata.weights} ` +
      `${metadata.quantization?.bits ?? ''}); quantize the fp32 model instead`);
  }
  const { tensors: table, ...description } = metadata;
  const tensors = new Map<string, Float32Array>();
  for (const t of table) {
    // A view of the file's bytes where aligned (kn8 is unpacked into a fresh array anyway); else a copy.
    const at = data.byteOffset + t.offset;
    const values = at % 4 === 0 ? new Float32Array(data.buffer, at, t.bytes / 4) : new Float32Array(data.slice(t.offset, t.offset + t.bytes).buffer);
    const n = t.shape[0], count = t.shape.reduce((a, b) => a * b, 1);
    tensors.set(t.name, t.layout === 'kn8' ? unpackKn8(values, n, count / n) : values);
  }
  return { metadata: description, tensors, extras: new Set() };
}

/**
 * Checkpoint state_dict -> the runtime's data section: every tensor of runtimeTensors() converted to its
 * stored layout and placed at a 64-aligned offset.
 */
import type { StateDict, Tensor } from '../tensor.js';
import type { VimConfig } from './config.js';
import { runtimeTensors, type RuntimeTensor } from './runtime-tensors.js';
import { alignUp, BLOB_ALIGN, layoutBytes, type TensorEntry } from '../formats/vimq.js';
import { fail } from '../errors.js';

/** Wp[k, n] = W[n, k] with rows padded to a multiple of 8 (W given as [N, K] row-major). */
export function packKn8(w: Float32Array, n: number, k: number): Float32Array {
  const np = alignUp(n, 8);
  const out = new Float32Array(k * np);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) out[j * np + i] = w[i * k + j];
  }
  return out;
}

/** The stored values of one runtime tensor, derived from the checkpoint's tensors. */
function storedValues(t: RuntimeTensor, sd: StateDict): Float32Array {
  const get = (name: string): Tensor => sd.get(name) ?? fail('BAD_MODEL', `missing tensor ${name}`);
  const conv = /^(layers\.\d+\.mixer\.conv1d(?:_b)?)\.weight$/.exec(t.name);
  if (conv) {
    const [K, E] = t.shape;
    const w = get(t.name).data; // [E, 1, K]
    const out = new Float32Array(K * E);
    for (let c = 0; c < E; c++) for (let k = 0; k < K; k++) out[k * E + c] = w[c * K + k];
    return out;
  }
  const a = /^(layers\.\d+\.mixer\.)A(_b)?$/.exec(t.name);
  if (a) {
    // Same rounding as the fp32 reference: exp in double precision, then one rounding to f32.
    return Float32Array.from(get(`${a[1]}A${a[2] ?? ''}_log`).data, (v) => -Math.exp(v));
  }
  const src = get(t.name).data;
  if (t.layout === 'kn8') return packKn8(src, t.shape[0], src.length / t.shape[0]);
  return src;
}

/**
 * Places tensors at 64-aligned offsets in list order and fills each with its stored bytes: the table and
 * the data section of a .vimq. Every writer (checkpoint conversion, quantization) goes through here.
 */
export function layoutTensors(list: RuntimeTensor[], storedBytes: (t: RuntimeTensor) => Uint8Array):
    { tensors: TensorEntry[]; data: Uint8Array } {
  const tensors: TensorEntry[] = [];
  let offset = 0;
  for (const t of list) {
    const bytes = layoutBytes(t.shape, t.layout);
    tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, layout: t.layout, offset, bytes });
    offset = alignUp(offset + bytes, BLOB_ALIGN);
  }
  const data = new Uint8Array(offset);
  list.forEach((t, i) => {
    const stored = storedBytes(t);
    if (stored.length !== tensors[i].bytes) {
      fail('BAD_MODEL', `tensor ${t.name}: ${stored.length} bytes, expected ${tensors[i].bytes}`);
    }
    data.set(stored, tensors[i].offset);
  });
  return { tensors, data };
}

/** Lays out all runtime tensors of an fp32 checkpoint; returns the table and the data section. */
export function packWeights(cfg: VimConfig, sd: StateDict): { tensors: TensorEntry[]; data: Uint8Array } {
  return layoutTensors(runtimeTensors(cfg), (t) => {
    const values = storedValues(t, sd);
    return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  });
}

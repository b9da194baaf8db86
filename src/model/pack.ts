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

/** Lays out all runtime tensors; returns the table and the data section. */
export function packWeights(cfg: VimConfig, sd: StateDict): { tensors: TensorEntry[]; data: Uint8Array } {
  const list = runtimeTensors(cfg);
  const tensors: TensorEntry[] = [];
  let offset = 0;
  for (const t of list) {
    const bytes = layoutBytes(t.shape, t.layout);
    tensors.push({ name: t.name, dtype: 'f32', shape: t.shape, layout: t.layout, offset, bytes });
    offset = alignUp(offset + bytes, BLOB_ALIGN);
  }
  const data = new Uint8Array(offset);
  const f32 = new Float32Array(data.buffer);
  list.forEach((t, i) => {
    const values = storedValues(t, sd);
    if (values.length * 4 !== tensors[i].bytes) {
      fail('BAD_MODEL', `tensor ${t.name}: ${values.length} values, expected ${tensors[i].bytes / 4}`);
    }
    f32.set(values, tensors[i].offset / 4);
  });
  return { tensors, data };
}

/** A host-side fp32 tensor: row-major (C order), contiguous. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Weights by their state_dict key, as read from a checkpoint. */
export type StateDict = Map<string, Tensor>;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Floating-point element types checkpoints store weights in; all are converted to fp32 on load. */
export type FloatDtype = 'float32' | 'float16' | 'bfloat16' | 'float64';

export const FLOAT_DTYPE_BYTES: Readonly<Record<FloatDtype, number>> = { float32: 4, float16: 2, bfloat16: 2, float64: 8 };

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** IEEE binary16 bits -> number (exact: every half value is representable in fp32). */
function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/**
 * Packed elements of one dtype -> fp32 values (float64 rounds to nearest). fp32 in host byte order at a
 * 4-aligned address comes back as a view of `bytes`, not a copy: a checkpoint's weights then cost no memory
 * beyond the file's (torch.save and safetensors align their tensors), and the caller keeps `bytes` unchanged
 * while it uses them. Anything else is decoded into a fresh array. `bytes.length` must be a multiple of the
 * element size.
 */
export function decodeFloats(bytes: Uint8Array, dtype: FloatDtype, littleEndian: boolean): Float32Array {
  const count = Math.floor(bytes.length / FLOAT_DTYPE_BYTES[dtype]);
  if (dtype === 'float32' && littleEndian === HOST_IS_LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, count);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  switch (dtype) {
    case 'float32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, littleEndian);
      break;
    case 'float64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, littleEndian);
      break;
    case 'float16':
      for (let i = 0; i < count; i++) out[i] = halfToNumber(view.getUint16(2 * i, littleEndian));
      break;
    case 'bfloat16': {
      const bits = new Uint32Array(out.buffer); // bf16 is the top half of an fp32 bit pattern
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, littleEndian) << 16;
      break;
    }
  }
  return out;
}

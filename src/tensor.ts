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
 * Packed elements of one dtype -> a fresh Float32Array (float64 rounds to nearest). `bytes.length` must be a
 * multiple of the element size; any byteOffset is fine. With `owned` (the bytes are the caller's private
 * copy), aligned float32 in host order is viewed instead of copied.
 */
export function decodeFloats(bytes: Uint8Array, dtype: FloatDtype, littleEndian: boolean, owned = false): Float32Array {
  const count = Math.floor(bytes.length / FLOAT_DTYPE_BYTES[dtype]);
  if (dtype === 'float32' && littleEndian === HOST_IS_LITTLE_ENDIAN && owned && bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, count);
  }
  if (dtype === 'float32' && littleEndian === HOST_IS_LITTLE_ENDIAN) {
    // A copy into a fresh, aligned buffer (not bytes.slice(): on a Node Buffer that is a view, not a copy).
    const copy = new Uint8Array(count * 4);
    copy.set(bytes.subarray(0, count * 4));
    return new Float32Array(copy.buffer);
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

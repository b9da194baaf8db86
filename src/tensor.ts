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

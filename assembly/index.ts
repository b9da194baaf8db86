// The vimedge WebAssembly module: kernels only. The host (src/model/) plans one memory arena, copies the
// weights in, and calls these with byte offsets into that memory.

export { exp_f32_array, exp2_nonpositive_f32_array } from './math_f32x4';
export { gemm_f32, packed_width } from './gemm_f32';
export { rmsnorm_f32, add_inplace_f32 } from './norm_f32';
export { conv1d_silu_f32 } from './conv1d_f32';
export { selective_scan_f32 } from './scan_f32';
export { softplus_inplace_f32, combine_gate_f32 } from './elementwise_f32';
export { im2col_f32, assemble_tokens_f32 } from './embed_f32';
export { gemm_s8, gemm_s4 } from './gemm_s8';
export { quantize_s8, shift_channels_f32 } from './quantize';
export { hadamard_rows_f32 } from './hadamard';
export { combine_gate_scaled_f32 } from './gate_scaled_f32';
export { int8_dot_peak } from './peak';

/** First byte the host may use: everything below belongs to the module's static data. */
export function heap_base(): usize {
  return (__heap_base + 63) & ~63;
}

// The vimedge WebAssembly module: kernels only. The host (src/model/) plans one memory arena, copies the
// weights in, and calls these with byte offsets into that memory. scripts/build-wasm.mjs compiles it four
// times (plain or shared memory, portable or relaxed SIMD) and writes the host's view of these exports,
// src/model/kernels.generated.ts, from the compiler's declarations.
//
// Kernels are named op_datatype, and the register-tiled ones also by tile and multiply-add path, as
// XNNPACK names its microkernels (qs8-gemm-4x4c4-...-dot16x2):
//   datatype  f32: fp32 in and out;  qs8: int8 activations x int8 weights -> fp32;  qs4: int8 activations x
//             int4 weights (groups of 64) -> fp32
//   tile      rows x outputs held in registers (4x8: 4 rows of A, 8 outputs)
//   path      dot16 = i32x4.dot_i16x8_s (portable SIMD, int8 widened to int16); rdot8 =
//             i32x4.relaxed_dot_i8x16_i7x16_add_s (relaxed SIMD); none = f32x4 multiply and add
// gemm_qs4 has one kernel per build (portable gemm_qs4_4x4_dot16, relaxed gemm_qs4_4x4_rdot8), so its export
// names only what both share; every other kernel is the same code in all four builds.

export { exp_f32_array, exp2_nonpositive_f32_array } from './math_f32x4';
export { gemm_f32_4x8 } from './gemm_f32_4x8';
export { rmsnorm_f32, add_inplace_f32 } from './norm_f32';
export { conv1d_silu_f32 } from './conv1d_f32';
export { selective_scan_f32 } from './scan_f32';
export { softplus_inplace_f32 } from './softplus_f32';
export { combine_gate_f32, combine_gate_scaled_f32 } from './combine_gate_f32';
export { im2col_f32, assemble_tokens_f32 } from './embed_f32';
export { gemm_qs8_4x4_dot16 } from './gemm_qs8_4x4_dot16';
export { gemm_qs4 } from './gemm_qs4';
export { quantize_s8, shift_channels_f32 } from './quantize';
export { hadamard_rows_f32 } from './hadamard';
export { int8_dot_peak } from './peak';

/** First byte the host may use: everything below belongs to the module's static data. */
export function heap_base(): usize {
  return (__heap_base + 63) & ~63;
}

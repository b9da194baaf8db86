/**
 * The JPEG and WebP decoders' WebAssembly (jSquash's MozJPEG and libwebp builds), carried base64 in
 * src/hosts/decoders-wasm.generated.ts and imported only when a first image is decoded: a bundler splits
 * that module off (Vite, webpack) or keeps it in the bundle (esbuild), and no .wasm file has to be served
 * or copied beside the code.
 */
import { base64Bytes } from './loading.js';

export async function inlineDecoderWasm(format: 'jpeg' | 'webp'): Promise<Uint8Array> {
  const { MOZJPEG_DEC, WEBP_DEC } = await import('./decoders-wasm.generated.js');
  return base64Bytes(format === 'jpeg' ? MOZJPEG_DEC : WEBP_DEC);
}

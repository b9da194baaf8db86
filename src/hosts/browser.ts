/**
 * Browser entry (`vimedge` under the `browser` condition; bundled to dist/browser/vimedge.js by
 * scripts/build-web.mjs). Also the universal one: it runs in web workers and in Deno (dist/deno/ wraps it so
 * that Deno needs no read permission for the WebAssembly).
 *
 * The WebAssembly files sit next to the bundle (dist/browser/*.wasm) and are fetched from there,
 * `new URL('./x.wasm', import.meta.url)`, a pattern bundlers (Vite, webpack 5, Parcel, esbuild with a
 * file loader) recognise and copy. Pass `wasm` / `decoders` to serve them from elsewhere. With `threads > 1`,
 * on a cross-origin isolated page or in Deno, Web Workers run vimedge-thread.js on vimedge.mt.wasm, both
 * next to the bundle too.
 */
import { webHost } from './web.js';

export * from '../api.js';
export type { ModelSource, WebImage, WebClassifier, WebLoadOptions, ImageDataLike, DrawableImage } from './web.js';

/** Loads a model (.vimq, or a .pth / .safetensors checkpoint converted on the fly) and its kernels. */
export const loadClassifier = webHost({
  wasm: () => new URL('./vimedge.wasm', import.meta.url),
  jpeg: () => new URL('./mozjpeg_dec.wasm', import.meta.url),
  png: () => new URL('./squoosh_png_bg.wasm', import.meta.url),
  threads: { wasm: () => new URL('./vimedge.mt.wasm', import.meta.url), worker: () => new URL('./vimedge-thread.js', import.meta.url) },
});

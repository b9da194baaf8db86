/**
 * Browser entry (`vimedge` under the `browser` and `deno` conditions; bundled to dist/browser/vimedge.js by
 * scripts/build-web.mjs). Also the universal one: it runs in web workers and in Deno.
 *
 * The WebAssembly is inside the JavaScript: the kernels (~20 kB of base64) in the bundle, the decoders in a
 * chunk imported on first decode (src/hosts/inline-decoders.ts). Nothing is fetched, so any bundler works
 * without copying files and Deno needs no read permission. Pass `wasm` / `decoders` to load others.
 * With `threads > 1`, on a cross-origin isolated page or in Deno, Web Workers run vimedge-thread.js (next to
 * the bundle) on the kernels' threads build, which is inline too.
 */
import { PORTABLE, THREADS_PORTABLE } from './kernels-wasm.generated.js';
import { base64Bytes } from './loading.js';
import { inlineDecoderWasm } from './inline-decoders.js';
import { classifyHandler } from './handler.js';
import { webHost } from './web.js';

export * from '../api.js';
export type { WebImage, WebClassifier, WebLoadOptions, DrawableImage } from './web.js';

/**
 * `loadClassifier`: a model (.vimq, or a .pth / .safetensors checkpoint converted on the fly) and its kernels;
 * `decodeImage`: an image's RGB pixels, as `classify` sees them.
 */
export const { loadClassifier, decodeImage } = webHost({
  wasm: () => base64Bytes(PORTABLE),
  jpeg: () => inlineDecoderWasm('jpeg'),
  webp: () => inlineDecoderWasm('webp'),
  threads: { wasm: () => base64Bytes(THREADS_PORTABLE), worker: () => new URL('./vimedge-thread.js', import.meta.url) },
});

/** A Request → Response function classifying POSTed images with one model (src/hosts/handler.ts). */
export const createClassifyHandler = classifyHandler(loadClassifier);

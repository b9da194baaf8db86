/**
 * workerd / Cloudflare Workers / service-worker-style runtimes entry (`vimedge` under the `workerd` and
 * `worker` conditions; bundled to dist/worker/vimedge.js by scripts/build-web.mjs).
 *
 * These runtimes cannot fetch files next to the script, so the WebAssembly is imported as modules:
 * `import x from './x.wasm'` gives a compiled WebAssembly.Module in workerd (a `wasm` module in the
 * .capnp config, see examples/edge-worker/) and in wrangler's and other Worker bundlers' builds. The
 * three files are next to the bundle in dist/worker/.
 */
import kernels from './vimedge.wasm';
import mozjpeg from './mozjpeg_dec.wasm';
import webp from './webp_dec.wasm';
import { classifyHandler } from './handler.js';
import { webHost } from './web.js';

export * from '../api.js';
export type { WebImage, WebClassifier, WebLoadOptions, DrawableImage } from './web.js';

/**
 * `loadClassifier`: a model (bytes, e.g. a `data` module of the worker, or a URL to fetch) with the bundled
 * kernels; `decodeImage`: an image's RGB pixels, as `classify` sees them.
 */
export const { loadClassifier, decodeImage } = webHost({ wasm: () => kernels, jpeg: () => mozjpeg, webp: () => webp });

/** A Request → Response function classifying POSTed images with one model (src/hosts/handler.ts). */
export const createClassifyHandler = classifyHandler(loadClassifier);

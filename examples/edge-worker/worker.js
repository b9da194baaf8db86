// An edge function for workerd (Cloudflare Workers' open-source runtime): POST an image (JPEG, PNG, GIF, WebP or
// BMP) to it, get {"predictions": [...top-5]} as JSON; a refused request gets {"code", "message"} with 405, 413,
// 400, 415 or 422 (docs/API.md, "createClassifyHandler"). The model is bundled with the worker (a `data` module
// in config.capnp) and loaded on the first request; nothing else outlives a request. Run: docs/API.md, "workerd".
import { createClassifyHandler } from './vimedge.js';
import model from './model.vimq';

export default {
  fetch: createClassifyHandler({ model, maxBodyBytes: 8 * 1024 * 1024, maxPixels: 16_000_000, topK: 5 }),
};

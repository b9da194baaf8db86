// An edge function for workerd (Cloudflare Workers' open-source runtime): POST an image (JPEG, PNG, GIF, WebP or BMP) to /,
// get the top-5 as JSON. The model is bundled with the worker (a `data` module in config.capnp); nothing
// is kept between requests but the loaded, read-only model. Run: see docs/API.md, "workerd".
import { loadClassifier, VimedgeError } from './vimedge.js';
import model from './model.vimq';

const MAX_BODY_BYTES = 8 * 1024 * 1024;  // 413 above this
const MAX_PIXELS = 16_000_000;           // 400 above this (the decoded image must fit the isolate's memory)
const IMAGE_TYPES = /^(image\/(jpeg|jpg|pjpeg|png|gif|webp|bmp)|application\/octet-stream)$/i;

// Loaded once per isolate, on the first request; a failed load is retried by the next request.
let classifier;
function getClassifier() {
  classifier ??= loadClassifier(model).catch((err) => { classifier = undefined; throw err; });
  return classifier;
}

const json = (status, body, headers = {}) => new Response(JSON.stringify(body), {
  status, headers: { 'content-type': 'application/json', ...headers },
});
const error = (status, message, headers) => json(status, { error: message, status }, headers);

/** The body, refused as soon as it exceeds the limit (whether or not Content-Length was sent). */
async function readBody(request) {
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > MAX_BODY_BYTES) return { tooLarge: true };
  if (!request.body) return { bytes: new Uint8Array(0) };
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) { await reader.cancel(); return { tooLarge: true }; }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { bytes.set(c, at); at += c.byteLength; }
  return { bytes };
}

export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname !== '/' && pathname !== '/classify') return error(404, `no route ${pathname}: POST an image to /`);
    if (request.method !== 'POST') return error(405, `method ${request.method} not allowed: POST an image`, { allow: 'POST' });
    const type = (request.headers.get('content-type') ?? '').split(';')[0].trim();
    if (type && !IMAGE_TYPES.test(type)) {
      const what = type.startsWith('image/') ? 'is not supported' : 'is not an image';
      return error(415, `content type ${type} ${what}: send image/jpeg, png, gif, webp or bmp`);
    }
    const body = await readBody(request);
    if (body.tooLarge) return error(413, `body over ${MAX_BODY_BYTES} bytes`);
    if (body.bytes.length === 0) return error(400, 'empty body: POST the image bytes');
    const topK = Number(new URL(request.url).searchParams.get('topK') ?? 5);
    try {
      const clf = await getClassifier();
      const predictions = await clf.classify(body.bytes, { topK, maxPixels: MAX_PIXELS });
      return json(200, { predictions });
    } catch (err) {
      // The client's fault (4xx): a bad image or option. Anything else (the model) is the server's (500).
      if (err instanceof VimedgeError && (err.code === 'BAD_IMAGE' || err.code === 'BAD_ARGUMENT')) {
        const unsupported = /not a JPEG, PNG, GIF, WebP or BMP/.test(err.message);
        return error(unsupported ? 415 : 400, err.message.replace(/^image: /, ''));
      }
      return error(500, 'internal error');
    }
  },
};

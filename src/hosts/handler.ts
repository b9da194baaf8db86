/**
 * `createClassifyHandler`: one classifier served over HTTP as a Request → Response function, the same on every
 * host that has them (workerd / Cloudflare Workers, Deno.serve, Node 20's Request and Response). A POST body
 * is an image in any format the host decodes; the answer is `{ "predictions": [...] }`, and every refusal is
 * a JSON `{ "code", "message" }` with a status saying whose fault it is. Each entry binds its loadClassifier.
 */
import { resolveOptions, type ImageClassifier } from '../classifier.js';
import { checkOptions, fail, VimedgeError } from '../errors.js';
import { sniffFormat } from './image-format.js';
import { readStream } from './loading.js';

export interface ClassifyHandlerOptions<Source> {
  /**
   * The model: a source, loaded on the first request (a failed load is retried by the next), or a classifier,
   * or the promise of one, loaded by the caller (with its own load options). Node: absent, the default model.
   */
  model?: Source | ImageClassifier<never> | Promise<ImageClassifier<never>>;
  /** Bodies longer than this are refused (413) from Content-Length, or while streaming (default 8 MiB). */
  maxBodyBytes?: number;
  /** Images with more pixels are refused (422) from their header, before decoding (default 16 000 000). */
  maxPixels?: number;
  /** Predictions per answer (default 5). */
  topK?: number;
}

const OPTION_NAMES: Record<keyof ClassifyHandlerOptions<unknown>, true> = { model: true, maxBodyBytes: true, maxPixels: true, topK: true };
const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Lower than classify's default: a decoded image must fit one isolate's memory (128 MB on Workers). */
const DEFAULT_MAX_PIXELS = 16_000_000;

type AnyClassifier = ImageClassifier<never>;

const isClassifier = (m: unknown): m is AnyClassifier | Promise<AnyClassifier> =>
  m instanceof Promise || (m !== null && typeof m === 'object' && typeof (m as AnyClassifier).classify === 'function');

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const refuse = (status: number, code: string, message: string, headers?: Record<string, string>) => json(status, { code, message }, headers);

/** The status of an error classifying a body that was read: the client's fault (4xx) or the server's (500). */
function statusOf(err: unknown, body: Uint8Array): number {
  if (!(err instanceof VimedgeError)) return 500;
  // An image refused: 415 when it is no format the decoders recognise, 422 when it is one but damaged or too large.
  if (err.code === 'BAD_IMAGE') return sniffFormat(body) ? 422 : 415;
  return err.code === 'BAD_ARGUMENT' ? 400 : 500;
}

/** The handler factory of a host, around its loadClassifier. */
export function classifyHandler<Source>(load: (source: Source) => Promise<AnyClassifier>) {
  return function createClassifyHandler(options: ClassifyHandlerOptions<Source>): (request: Request) => Promise<Response> {
    const { model, maxBodyBytes = DEFAULT_MAX_BODY_BYTES, maxPixels = DEFAULT_MAX_PIXELS, topK } =
      checkOptions(options, 'createClassifyHandler options', OPTION_NAMES);
    if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) fail('BAD_ARGUMENT', `maxBodyBytes must be a positive integer, got ${String(maxBodyBytes)}`);
    const classifyOptions = { topK: resolveOptions({ topK, maxPixels }).topK, maxPixels };   // checked now, not at the first request
    let classifier: Promise<AnyClassifier> | undefined;
    const loaded = () => classifier ??= (isClassifier(model) ? Promise.resolve(model) : load(model as Source))
      .catch((err) => { classifier = undefined; throw err; });

    return async function classifyRequest(request: Request): Promise<Response> {
      if (request.method !== 'POST') return refuse(405, 'METHOD_NOT_ALLOWED', `method ${request.method} not allowed: POST an image`, { allow: 'POST' });
      const tooLarge = () => refuse(413, 'BODY_TOO_LARGE', `body over ${maxBodyBytes} bytes`);
      if (Number(request.headers.get('content-length') ?? NaN) > maxBodyBytes) return tooLarge();
      let clf: AnyClassifier;
      try {
        clf = await loaded();
      } catch (err) {
        return refuse(500, err instanceof VimedgeError ? err.code : 'INTERNAL', 'the model could not be loaded');
      }
      let body: Uint8Array | undefined;
      try {
        body = request.body ? await readStream(request.body, 'body', maxBodyBytes) : new Uint8Array(0);
        if (!body) return tooLarge();
        if (body.length === 0) return refuse(400, 'BAD_IMAGE', 'empty body: POST the image bytes');
        return json(200, { predictions: await clf.classify(body as never, classifyOptions) });
      } catch (err) {
        const status = statusOf(err, body ?? new Uint8Array(0));
        return status === 500 ? refuse(500, 'INTERNAL', 'internal error')
          : refuse(status, (err as VimedgeError).code, (err as VimedgeError).message);
      }
    };
  };
}

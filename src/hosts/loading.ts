/**
 * What every host does to load a model or read an image, host-neutral (no Node built-ins, no DOM): bytes taken
 * from whatever form they come in (within limits, with progress, abortable), WebAssembly compiled. The hosts add
 * how paths are read; load-options.ts checks the options.
 */
import type { BinaryData, FetchLimits, LoadOptions, ModelSource, WasmSource } from '../api.js';
import { checkOptions, fail, VimedgeError } from '../errors.js';

export function isBinary(value: unknown): value is BinaryData {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/** A view of any binary form as a Uint8Array (no copy). */
export function asBytes(data: BinaryData): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return fail('BAD_ARGUMENT', 'expected bytes (Uint8Array, ArrayBuffer or a typed array)');
}

const FETCH_LIMIT_NAMES: Record<keyof FetchLimits, true> = { maxBytes: true, timeoutMs: true };

export const DEFAULT_FETCH_LIMITS: Required<FetchLimits> = { maxBytes: 2 ** 30, timeoutMs: 120_000 };

/** The limits given, checked, over the defaults (the readers below take them checked). */
export function fetchLimits(limits?: FetchLimits): Required<FetchLimits> {
  const resolved = { ...DEFAULT_FETCH_LIMITS, ...checkOptions(limits, 'fetch limits', FETCH_LIMIT_NAMES) };
  for (const [key, value] of Object.entries(resolved)) {
    if (!(typeof value === 'number' && value > 0)) fail('BAD_ARGUMENT', `fetch ${key} must be a positive number, got ${String(value)}`);
  }
  return resolved;
}

/** How one read is bounded, reported and stopped: the fetch limits and LoadOptions' onProgress and signal. */
export type ReadOptions = FetchLimits & Pick<LoadOptions, 'onProgress' | 'signal'>;

/** Reads a path or a URL the host's way (Node: files and fetch; web: fetch, Deno's files). */
export type ReadPath = (source: string | URL, what: string, options?: ReadOptions) => Promise<{ bytes: Uint8Array; name: string }>;

/** The one ABORTED error, once the caller's signal has fired. */
export function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) fail('ABORTED', `${what}: loading aborted${signal.reason instanceof Error ? ` (${signal.reason.message})` : ''}`);
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * A stream's bytes, read chunk by chunk so that a body over maxBytes is cancelled when it passes the limit
 * (undefined is returned), not after it has filled memory; progress is reported after each chunk.
 */
export async function readStream(stream: ReadableStream<Uint8Array>, what: string, maxBytes: number,
                                 options: ReadOptions & { total?: number } = {}): Promise<Uint8Array | undefined> {
  const { onProgress, signal, total } = options;
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = stream.getReader();
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    length += chunk.value.length;
    if (length > maxBytes || signal?.aborted) {
      await reader.cancel().catch(() => undefined);
      checkAborted(signal, what);
      return undefined;
    }
    chunks.push(chunk.value);
    onProgress?.({ loaded: length, total });
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** A fetch Response's body, or a one-line error naming the URL and the status, or the limit passed. */
export async function responseBytes(response: Response, what: string, options: ReadOptions = {}): Promise<Uint8Array> {
  const { maxBytes = DEFAULT_FETCH_LIMITS.maxBytes } = options;
  if (!response.ok) fail('BAD_ARGUMENT', `${what}: HTTP ${response.status} ${response.statusText}`.trim());
  const tooLong = () => fail('BAD_ARGUMENT', `${what}: the response is longer than the limit of ${maxBytes} bytes`);
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) tooLong();
  if (response.body === null) return new Uint8Array(0);
  return await readStream(response.body, what, maxBytes, { ...options, total: declared >= 0 ? declared : undefined }) ?? tooLong();
}

/** Fetches a URL within the limits; network errors and timeouts become VimedgeErrors naming the URL. */
export async function fetchBytes(url: URL | string, what = String(url), options: ReadOptions = {}): Promise<Uint8Array> {
  const { timeoutMs = DEFAULT_FETCH_LIMITS.timeoutMs, signal } = options;
  checkAborted(signal, what);
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    return await responseBytes(response, what, options);
  } catch (err) {
    if (err instanceof VimedgeError) throw err;
    checkAborted(signal, what);
    if (timeout.aborted) fail('BAD_ARGUMENT', `${what}: no complete response within ${timeoutMs} ms`);
    return fail('BAD_ARGUMENT', `${what}: cannot fetch (${message(err)})`);
  }
}

/** Bytes, a Blob / File, a Response, a path or a URL: what `sourceBytes` reads, for a model or an encoded image. */
export type ByteSource = ModelSource;

export function isByteSource(value: unknown): value is ByteSource {
  return isBinary(value) || typeof value === 'string' || value instanceof URL
    || (typeof Response !== 'undefined' && value instanceof Response) || (typeof Blob !== 'undefined' && value instanceof Blob);
}

/** The bytes of a model or an encoded image in any of its forms, and the name its errors will use. */
export async function sourceBytes(source: ByteSource, what: string, readPath: ReadPath,
                                  options: ReadOptions = {}): Promise<{ bytes: Uint8Array; name: string }> {
  if (isBinary(source)) {
    const bytes = asBytes(source);
    options.onProgress?.({ loaded: bytes.length, total: bytes.length });
    return { bytes, name: what };
  }
  if (typeof source === 'string' || source instanceof URL) return readPath(source, what, options);
  if (!(source instanceof Blob)) return { bytes: await responseBytes(source, source.url || what, options), name: source.url || what };
  const name = (source as { name?: string }).name || what;   // a File's name
  const { maxBytes = DEFAULT_FETCH_LIMITS.maxBytes } = options;
  if (source.size > maxBytes) fail('BAD_ARGUMENT', `${name}: ${source.size} bytes, over the limit of ${maxBytes}`);
  return { bytes: (await readStream(source.stream(), name, maxBytes, { ...options, total: source.size }))!, name };
}

/** The bytes of a base64 string: the WebAssembly the package carries inline (src/hosts/*-wasm.generated.ts). */
export function base64Bytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * A page whose Content-Security-Policy lacks 'wasm-unsafe-eval' (Chromium: "Refused to compile ... Content
 * Security Policy", Firefox: "blocked by CSP", workerd: "disallowed by embedder") is not a bad file.
 */
const WASM_BLOCKED = /content security policy|\bCSP\b|disallowed by embedder|code generation/i;

/** Compiles kernels or decoder WebAssembly from any WasmSource; `read` serves strings and URLs. */
export async function compileWasm(source: WasmSource, read: (url: URL | string) => Promise<Uint8Array>,
                                  what: string): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  let bytes: Uint8Array;
  if (isBinary(source)) bytes = asBytes(source);
  else if (typeof Response !== 'undefined' && source instanceof Response) bytes = await responseBytes(source, what);
  else if (typeof source === 'string' || source instanceof URL) bytes = await read(source);
  else return fail('BAD_ARGUMENT', `${what}: expected bytes, a WebAssembly.Module, a URL or a Response`);
  try {
    return await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    const why = message(err);
    if (WASM_BLOCKED.test(why)) {
      return fail('WASM_BLOCKED', `${what}: this page or runtime does not allow WebAssembly (${why}); `
        + "allow it with script-src 'wasm-unsafe-eval' in the Content-Security-Policy");
    }
    return fail('BAD_ARGUMENT', `${what}: not valid WebAssembly (${why})`);
  }
}

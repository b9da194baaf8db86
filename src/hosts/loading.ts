/**
 * What every host does to load a model, host-neutral (no Node built-ins, no DOM): the options checked, bytes
 * taken from whatever form they come in, WebAssembly compiled. The hosts add how paths are read.
 */
import type { BinaryData, FetchLimits, LoadOptions, WasmSource } from '../api.js';
import { fail, VimedgeError } from '../errors.js';

/** The options every host takes, checked before any reading; the thread count (an integer from 1 to 256). */
export function checkLoadOptions(options: LoadOptions): number {
  if (options === null || typeof options !== 'object') fail('BAD_ARGUMENT', 'loadClassifier options must be an object');
  const { maxMemory } = options;
  if (maxMemory !== undefined && !(typeof maxMemory === 'number' && maxMemory > 0)) {
    fail('BAD_ARGUMENT', `maxMemory must be a positive number of bytes, got ${String(maxMemory)}`);
  }
  const n = options.threads ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 256) fail('BAD_ARGUMENT', `threads must be an integer from 1 to 256, got ${String(n)}`);
  return n;
}

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

export const DEFAULT_FETCH_LIMITS: Required<FetchLimits> = { maxBytes: 2 ** 30, timeoutMs: 120_000 };

/** The limits given, checked, over the defaults. */
export function fetchLimits(limits: FetchLimits = {}): Required<FetchLimits> {
  if (limits === null || typeof limits !== 'object') fail('BAD_ARGUMENT', 'fetch limits must be an object');
  const resolved = { ...DEFAULT_FETCH_LIMITS, ...limits };
  for (const [key, value] of Object.entries(resolved)) {
    if (!(typeof value === 'number' && value > 0)) fail('BAD_ARGUMENT', `fetch ${key} must be a positive number, got ${String(value)}`);
  }
  return resolved;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * A fetch Response's body, or a one-line error naming the URL and the status; read chunk by chunk so that a
 * body over maxBytes is refused when it passes the limit, not after it has filled memory.
 */
export async function responseBytes(response: Response, what: string, maxBytes = DEFAULT_FETCH_LIMITS.maxBytes): Promise<Uint8Array> {
  if (!response.ok) fail('BAD_ARGUMENT', `${what}: HTTP ${response.status} ${response.statusText}`.trim());
  const tooLong = () => fail('BAD_ARGUMENT', `${what}: the response is longer than the limit of ${maxBytes} bytes`);
  if (Number(response.headers.get('content-length')) > maxBytes) tooLong();
  if (response.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = response.body.getReader();
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    length += chunk.value.length;
    if (length > maxBytes) {
      await reader.cancel().catch(() => undefined);
      tooLong();
    }
    chunks.push(chunk.value);
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** Fetches a URL within the limits; network errors and timeouts become VimedgeErrors naming the URL. */
export async function fetchBytes(url: URL | string, what = String(url), limits: FetchLimits = {}): Promise<Uint8Array> {
  const { maxBytes, timeoutMs } = fetchLimits(limits);
  try {
    return await responseBytes(await fetch(url, { signal: AbortSignal.timeout(timeoutMs) }), what, maxBytes);
  } catch (err) {
    if (err instanceof VimedgeError) throw err;
    if (err instanceof Error && err.name === 'TimeoutError') fail('BAD_ARGUMENT', `${what}: no complete response within ${timeoutMs} ms`);
    return fail('BAD_ARGUMENT', `${what}: cannot fetch (${message(err)})`);
  }
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

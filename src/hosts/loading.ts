/**
 * What every host does to load a model, host-neutral (no Node built-ins, no DOM): the options checked, bytes
 * taken from whatever form they come in, WebAssembly compiled. The hosts add how paths are read.
 */
import type { BinaryData, LoadOptions, WasmSource } from '../api.js';
import { fail } from '../errors.js';

/** The options every host takes, checked before any reading; the thread count (an integer from 1 to 256). */
export function checkLoadOptions(options: LoadOptions): number {
  if (options === null || typeof options !== 'object') fail('BAD_ARGUMENT', 'loadClassifier options must be an object');
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

/** A fetch Response's body, or a one-line error naming the URL and the status. */
export async function responseBytes(response: Response, what: string): Promise<Uint8Array> {
  if (!response.ok) fail('BAD_ARGUMENT', `${what}: HTTP ${response.status} ${response.statusText}`.trim());
  return new Uint8Array(await response.arrayBuffer());
}

/** Fetches a URL; network errors become VimedgeErrors naming the URL. */
export async function fetchBytes(url: URL | string, what = String(url)): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    return fail('BAD_ARGUMENT', `${what}: cannot fetch (${err instanceof Error ? err.message : String(err)})`);
  }
  return responseBytes(response, what);
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
    const why = err instanceof Error ? err.message : String(err);
    if (WASM_BLOCKED.test(why)) {
      return fail('WASM_BLOCKED', `${what}: this page or runtime does not allow WebAssembly (${why}); `
        + "allow it with script-src 'wasm-unsafe-eval' in the Content-Security-Policy");
    }
    return fail('BAD_ARGUMENT', `${what}: not valid WebAssembly (${why})`);
  }
}

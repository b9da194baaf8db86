/**
 * The one error type the library throws for bad input. `code` says which kind of input was bad,
 * the message names the file or field and the problem in one line (the CLI prints it without a stack).
 */
export type ErrorCode =
  | 'BAD_CHECKPOINT'   // .pth / .safetensors container or contents
  | 'UNSAFE_PICKLE'    // a pickle asked for a global or opcode a state_dict never needs
  | 'BAD_MODEL'        // tensors missing, extra, mis-shaped or non-finite
  | 'BAD_MODEL_FILE'   // .vimq magic, version, checksum, layout
  | 'BAD_IMAGE'        // undecodable, empty, over the pixel limit
  | 'BAD_DATASET'      // idx files, image folders
  | 'WASM_BLOCKED'     // the host refuses to compile WebAssembly (a Content-Security-Policy without 'wasm-unsafe-eval')
  | 'ABORTED'          // loading stopped by the caller's AbortSignal
  | 'BAD_ARGUMENT';    // CLI flags and API options

/** Longest message kept; longer ones (a hostile file can make a quoted name megabytes long) are cut. */
const MAX_MESSAGE_CHARS = 1000;

/**
 * Messages quote names taken from untrusted files (zip entries, pickle globals, tensor keys), and the CLI
 * prints labels and file names from them: control and bidirectional-override characters are escaped (as
 * \uXXXX, which JSON reads back as the same character) so that a line stays one printable line and cannot
 * drive the terminal it is printed to. Lines longer than maxChars are cut.
 */
export function printable(text: string, maxChars = MAX_MESSAGE_CHARS): string {
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length > maxChars ? `${escaped.slice(0, maxChars)}... (cut)` : escaped;
}

export class VimedgeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(printable(message));
    this.name = 'VimedgeError';
    this.code = code;
  }
}

export function fail(code: ErrorCode, message: string): never {
  throw new VimedgeError(code, message);
}

/**
 * An options object checked before any work: absent is `{}`; anything but a plain object, or a name not in
 * `names` (a typo such as `top_k` would otherwise be ignored silently), is one BAD_ARGUMENT error.
 */
export function checkOptions<T extends object>(options: T | undefined, what: string, names: Record<keyof T, unknown>): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) fail('BAD_ARGUMENT', `${what} must be an object`);
  const known = Object.keys(names);
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const close = known.find((k) => k.toLowerCase() === name.replace(/[-_]/g, '').toLowerCase());
    fail('BAD_ARGUMENT', `${what}: unknown option ${JSON.stringify(name)}${close ? ` (did you mean ${close}?)` : ''}; known: ${known.join(', ')}`);
  }
  return options;
}

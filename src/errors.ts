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
  | 'BAD_ARGUMENT';    // CLI flags and API options

export class VimedgeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'VimedgeError';
    this.code = code;
  }
}

export function fail(code: ErrorCode, message: string): never {
  throw new VimedgeError(code, message);
}

/**
 * jSquash's codecs (MozJPEG, libwebp) are Emscripten modules; this drives one from an already compiled
 * WebAssembly.Module (what workerd's and bundlers' `.wasm` imports give), so that it never fetches anything
 * by itself, keeps one instance per page or isolate, and collects the C library's messages for our errors.
 */

/** What the codecs' `decode` returns: an ImageData (RGBA) or null. */
export interface DecodedRgba {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

type Factory = (options: object) => Promise<unknown>;

/**
 * The codecs build their result with `new ImageData(...)`, which workerd and some runtimes lack. A plain
 * stand-in is put on globalThis for the synchronous decode call only, and removed after.
 */
class PlainImageData {
  constructor(readonly data: Uint8ClampedArray, readonly width: number, readonly height: number) {}
}

export class EmscriptenCodec<M> {
  private instance: Promise<M> | undefined;
  private messages: string[] = [];

  constructor(private readonly factory: Factory, private readonly wasm: () => Promise<WebAssembly.Module>) {}

  private module(): Promise<M> {
    return this.instance ??= this.wasm().then((wasm) => this.factory({
      noInitialRun: true,
      // Never let Emscripten look for its .wasm file itself (workerd has no import.meta.url to resolve from).
      locateFile: (file: string) => file,
      instantiateWasm(imports: WebAssembly.Imports, ready: (instance: WebAssembly.Instance) => void) {
        const instance = new WebAssembly.Instance(wasm, imports);
        ready(instance);
        return instance.exports;
      },
      // The library's messages ("Premature end of JPEG file", ...) go into our errors, not to the console.
      print: () => {},
      printErr: (line: string) => { this.messages.push(line); },
    }) as Promise<M>).catch((err) => {
      this.instance = undefined;
      throw err;
    });
  }

  /**
   * Runs one synchronous decode; returns its result and the messages the library printed meanwhile. A call
   * that throws (an exit() inside the C code) discards the instance, so the next call starts afresh.
   */
  async run<T>(call: (module: M) => T): Promise<{ result: T; messages: string[] }> {
    const module = await this.module();
    const g = globalThis as { ImageData?: unknown };
    const shim = typeof g.ImageData === 'undefined';
    if (shim) g.ImageData = PlainImageData;
    this.messages = [];
    try {
      return { result: call(module), messages: this.messages };
    } catch (err) {
      this.instance = undefined;
      const why = this.messages.join('; ') || (err instanceof Error ? err.message : String(err));
      throw new Error(why);
    } finally {
      if (shim) delete g.ImageData;
    }
  }
}

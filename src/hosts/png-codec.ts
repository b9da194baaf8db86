/**
 * The PNG decoder of `@jsquash/png` (the Rust `png` crate built with wasm-bindgen), with an instance that is
 * thrown away whenever a decode fails.
 *
 * Why not jSquash's own binding: when the Rust code fails on a damaged file it throws through its frames
 * (`unwrap_throw`), so nothing it allocated is freed, and that binding keeps one instance for the life of the
 * page or isolate. Every truncated PNG then leaks about 8 bytes per pixel of the size its header claims
 * (2 MB for 500x500) until wasm32's 4 GiB run out and no PNG decodes any more: a cheap way to take an edge
 * worker down. Here a failed decode discards its instance (a new one costs ~2 ms; the module stays
 * compiled), and so does a decode that left the instance's memory large, since wasm memory never shrinks.
 *
 * The imports are the wasm-bindgen shims the module asks for, recognised by their names without the hash
 * suffix, so a rebuilt codec with other hashes still links.
 */
import { fail } from '../errors.js';

export interface Rgba16Image {
  width: number;
  height: number;
  /** RGBA, 16 bits a sample (8-bit files widened as v * 257): a view of the decoder's memory, valid until free(). */
  data: Uint16Array;
  free(): void;
}

interface PngExports {
  memory: WebAssembly.Memory;
  __wbindgen_malloc(size: number, align: number): number;
  __wbg_imagedatargba16_free(image: number): void;
  decode_rgba16(ptr: number, len: number): number;
  imagedatargba16_width(image: number): number;
  imagedatargba16_height(image: number): number;
  imagedatargba16_data(image: number): number;
}

interface Codec {
  exports: PngExports;
  objects: Map<number, unknown>;
}

/** An instance whose memory grew past this after an image is not kept for the next one. */
const KEEP_MEMORY_BYTES = 64 << 20;
const current = new WeakMap<WebAssembly.Module, Codec>();

function instantiate(module: WebAssembly.Module): Codec {
  // wasm-bindgen passes JS values to and from wasm as indices into a table kept on the JS side.
  const objects = new Map<number, unknown>();
  let nextIndex = 1024;
  const add = (value: unknown) => { objects.set(nextIndex, value); return nextIndex++; };
  const get = (index: number) => objects.get(index);
  const codec = { objects } as Codec;
  const shims: Record<string, (...args: number[]) => unknown> = {
    __wbindgen_memory: () => add(codec.exports.memory),
    __wbg_buffer: (memory) => add((get(memory) as WebAssembly.Memory).buffer),
    __wbg_newwithbyteoffsetandlength: (buffer, offset, length) => add(new Uint16Array(get(buffer) as ArrayBuffer, offset >>> 0, length >>> 0)),
    __wbindgen_object_drop_ref: (index) => { objects.delete(index); },
    __wbindgen_throw: (ptr, len) => {
      throw new Error(new TextDecoder().decode(new Uint8Array(codec.exports.memory.buffer, ptr >>> 0, len >>> 0)));
    },
  };
  const imports: Record<string, Record<string, (...args: number[]) => unknown>> = {};
  for (const { module: from, name } of WebAssembly.Module.imports(module)) {
    const shim = shims[name] ?? shims[name.replace(/_[0-9a-f]{16}$/, '')];
    (imports[from] ??= {})[name] = shim ?? (() => { throw new Error(`PNG codec import ${name} is not provided`); });
  }
  try {
    codec.exports = new WebAssembly.Instance(module, imports as WebAssembly.Imports).exports as unknown as PngExports;
  } catch (err) {
    return fail('BAD_ARGUMENT', `the PNG decoder's WebAssembly does not link (${err instanceof Error ? err.message : String(err)})`);
  }
  return codec;
}

/** Decodes PNG bytes; throws the codec's Error on a damaged file (after discarding the instance). */
export function decodePngRgba16(module: WebAssembly.Module, bytes: Uint8Array): Rgba16Image {
  let codec = current.get(module);
  if (!codec) current.set(module, codec = instantiate(module));
  const wasm = codec.exports;
  let image: number;
  let data: Uint16Array;
  try {
    const ptr = wasm.__wbindgen_malloc(bytes.length, 1) >>> 0;
    new Uint8Array(wasm.memory.buffer).set(bytes, ptr);
    image = wasm.decode_rgba16(ptr, bytes.length) >>> 0;
    const index = wasm.imagedatargba16_data(image);
    data = codec.objects.get(index) as Uint16Array;
    codec.objects.delete(index);
  } catch (err) {
    current.delete(module); // whatever it allocated is lost with it
    throw err;
  }
  let freed = false;
  return {
    width: wasm.imagedatargba16_width(image) >>> 0,
    height: wasm.imagedatargba16_height(image) >>> 0,
    data,
    free() {
      if (freed) return;
      freed = true;
      wasm.__wbg_imagedatargba16_free(image);
      if (wasm.memory.buffer.byteLength > KEEP_MEMORY_BYTES && current.get(module) === codec) current.delete(module);
    },
  };
}

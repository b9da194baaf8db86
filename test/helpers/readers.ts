// The reader fixtures written by tools/make_reader_fixtures.py: real torch.save / safetensors files and
// the exact float32 bits Python wrote (base64, so NaN, Inf and -0 compare exactly).
import { readFileSync } from 'node:fs';

const READERS = new URL('../fixtures/readers/', import.meta.url);
export const fixture = (file: string) => readFileSync(new URL(file, READERS));
export const expected: Record<string, Record<string, { shape: number[]; f32: string }>> =
  JSON.parse(readFileSync(new URL('expected.json', READERS), 'utf8'));
export const bits = (data: Float32Array) => Array.from(new Uint32Array(data.buffer, data.byteOffset, data.length));

// Reads the PyTorch-reference fixtures written by tools/make_golden_fixtures.py (format: tools/README.md).
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

export interface GoldenInput {
  file: string;
  shape: number[];
  logits_f64: number[];
  top5: number[];
  top5_min_gap: number;
}

export interface Golden {
  dir: string;
  manifest: {
    config: Record<string, number | string>;
    weights: { pth: string; safetensors: string };
    inputs: GoldenInput[];
    dumps: { input: number; tensors: Record<string, { file: string; shape: number[] }> };
  };
  bytes(file: string): Uint8Array;
  f32(file: string): Float32Array;
}

export const SMALL_CONFIGS = ['small', 'small-stride8', 'small-gray'].map((c) => `test/fixtures/small/${c}`);
export const TINY = 'test/fixtures/generated/tiny';

export function golden(dir: string): Golden | undefined {
  const manifestFile = path.join(dir, 'manifest.json');
  if (!existsSync(manifestFile)) return undefined;
  const bytes = (file: string) => new Uint8Array(readFileSync(path.join(dir, file)));
  return {
    dir,
    manifest: JSON.parse(readFileSync(manifestFile, 'utf8')),
    bytes,
    f32: (file) => { const b = bytes(file); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); },
  };
}

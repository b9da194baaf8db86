// Reads the PyTorch-reference fixtures written by tools/make_golden_fixtures.py (format: tools/README.md), and
// observes the runtime under the names the fixtures give their dumps.
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { Observer } from '../../src/model/vim-model.js';

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

/**
 * An Observer that keeps a copy of every activation the reference dumps, under the dump's name
 * (tools/vim_reference.py `forward`). A Linear's input is the reference's tensor only without input
 * transforms, as in the fp32 fixtures: in_proj's is the RMSNorm output, out_proj's the gated branch sum.
 */
export function dumpObserver(): { observer: Observer; dumps: Map<string, Float32Array> } {
  const dumps = new Map<string, Float32Array>();
  const keep = (name: string, values: Float32Array) => dumps.set(name, values.slice());
  const linearDump = { in_proj: 'norm', out_proj: 'mixer.y' } as Record<string, string>;
  const observer: Observer = {
    patchEmbed: (v) => keep('patch_embed', v),
    tokens: (v) => keep('x_pos', v),
    residual: (i, v) => keep(`layer${i}.resid_in`, v),
    linearInput: (site, v) => {
      const [, layer, linear] = /^layers\.(\d+)\.mixer\.(\w+)$/.exec(site.name) ?? [];
      if (linearDump[linear]) keep(`layer${layer}.${linearDump[linear]}`, v);
    },
    mixerInput: (i, x, z) => { keep(`layer${i}.mixer.x`, x); keep(`layer${i}.mixer.z`, z); },
    branch: (i, direction, values) => {
      for (const [name, v] of Object.entries(values)) keep(`layer${i}.mixer.${direction === 'forward' ? 'fwd' : 'bwd'}.${name}`, v);
    },
    mixerOutput: (i, v) => keep(`layer${i}.h`, v),
    finalResidual: (v) => keep('final.resid', v),
    classToken: (v) => keep('final.norm_cls', v),
  };
  return { observer, dumps };
}

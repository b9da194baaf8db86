/**
 * The tensors the fp32 runtime reads, in arena order: their names, logical shapes and layouts.
 * Both the packer (checkpoint -> .vimq) and the loader (.vimq -> kernels) derive from this one list.
 *
 * Differences from the checkpoint (docs/FORMAT.md):
 * - Linear and patch-conv weights are stored transposed and padded ('kn8') for the GEMM kernel.
 * - conv1d weights [E, 1, K] are stored as their transpose [K, E] (logical shape [K, E], 'plain').
 * - A_log [E, N] is stored as A = -exp(A_log) under the name `A` (`A_b`), as the scan uses it.
 */
import type { VimConfig } from './config.js';
import type { TensorLayout } from '../formats/vimq.js';

export interface RuntimeTensor {
  name: string;
  shape: number[];
  layout: TensorLayout;
}

export function runtimeTensors(cfg: VimConfig): RuntimeTensor[] {
  const { embedDim: D, innerDim: E, dState: N, dtRank: R, dConv: K } = cfg;
  const P = cfg.patchSize;
  const list: RuntimeTensor[] = [
    { name: 'patch_embed.proj.weight', shape: [D, cfg.channels, P, P], layout: 'kn8' },
    { name: 'patch_embed.proj.bias', shape: [D], layout: 'plain' },
    { name: 'cls_token', shape: [1, 1, D], layout: 'plain' },
    { name: 'pos_embed', shape: [1, cfg.numTokens, D], layout: 'plain' },
  ];
  for (let i = 0; i < cfg.depth; i++) {
    const p = `layers.${i}.`;
    list.push({ name: `${p}norm.weight`, shape: [D], layout: 'plain' });
    list.push({ name: `${p}mixer.in_proj.weight`, shape: [2 * E, D], layout: 'kn8' });
    for (const s of ['', '_b']) {
      list.push(
        { name: `${p}mixer.conv1d${s}.weight`, shape: [K, E], layout: 'plain' },
        { name: `${p}mixer.conv1d${s}.bias`, shape: [E], layout: 'plain' },
        { name: `${p}mixer.x_proj${s}.weight`, shape: [R + 2 * N, E], layout: 'kn8' },
        { name: `${p}mixer.dt_proj${s}.weight`, shape: [E, R], layout: 'kn8' },
        { name: `${p}mixer.dt_proj${s}.bias`, shape: [E], layout: 'plain' },
        { name: `${p}mixer.A${s}`, shape: [E, N], layout: 'plain' },
        { name: `${p}mixer.D${s}`, shape: [E], layout: 'plain' },
      );
    }
    list.push({ name: `${p}mixer.out_proj.weight`, shape: [D, E], layout: 'kn8' });
  }
  list.push(
    { name: 'norm_f.weight', shape: [D], layout: 'plain' },
    { name: 'head.weight', shape: [cfg.numClasses, D], layout: 'kn8' },
    { name: 'head.bias', shape: [cfg.numClasses], layout: 'plain' },
  );
  return list;
}

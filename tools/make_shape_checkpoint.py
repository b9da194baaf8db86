"""A seeded random checkpoint at a published Vim shape, for memory and time measurements (bench/memory.ts).

  /usr/bin/python3 tools/make_shape_checkpoint.py --variant vim-small --out /tmp/vim-small.pth
  /usr/bin/python3 tools/make_shape_checkpoint.py --variant vim-base --training --out /tmp/vim-base-train.pth

The weights are make_golden_fixtures.py's (same scales, fp32, official keys). --training writes what Vim's
training script saves: the weights under 'model', an EMA copy under 'model_ema', AdamW's two moments per
parameter under 'optimizer', the epoch and the args, so the file is about four times the weights.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

import vim_reference as ref
from make_golden_fixtures import make_weights

SEED = 2024


def training_checkpoint(sd: dict, variant: str) -> dict:
    """The weights wrapped as a training checkpoint: EMA copy, AdamW state, epoch, args."""
    params = list(sd.values())
    state = {i: {'step': torch.tensor(1.0), 'exp_avg': p * 1e-3, 'exp_avg_sq': p * p * 1e-6} for i, p in enumerate(params)}
    optimizer = {'state': state, 'param_groups': [{'lr': 1e-3, 'params': list(range(len(params)))}]}
    args = argparse.Namespace(model=variant.replace('-', '_'), lr=1e-3, epochs=300)
    return {'model': sd, 'model_ema': {k: v.clone() for k, v in sd.items()}, 'optimizer': optimizer,
            'epoch': 1, 'args': args}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--variant', choices=sorted(ref.VARIANTS), required=True)
    ap.add_argument('--training', action='store_true', help='a training checkpoint (EMA, optimizer state, args)')
    ap.add_argument('--out', type=Path, required=True)
    a = ap.parse_args(argv)
    sd = make_weights(ref.VARIANTS[a.variant], SEED)
    torch.save(training_checkpoint(sd, a.variant) if a.training else {'model': sd}, a.out)
    print(f'{a.out}: {a.out.stat().st_size / 1e6:.1f} MB, {sum(t.numel() for t in sd.values()):,} parameters')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

"""Shared by tools/export_onnx.py and tools/bench_torch.py: an official Vim checkpoint in the repository's PyTorch
nn.Module (training/vim_model.py), and the input every row of the speed table runs.

The checkpoint's config and key layout come from vim_reference (config.py); the scan is chosen with the model's
own option, `VisionMamba.set_scan`: 'chunked' for PyTorch eager (its token-by-token in-place loop without
gradients), 'joint' for the ONNX export (`Mixer.forward_joint` says why that spelling).
"""
from __future__ import annotations

import os
import sys
from typing import Dict

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'training'))

from vim_model import VisionMamba  # noqa: E402  (training/vim_model.py)
from vim_reference import VimConfig  # noqa: E402


def build_model(sd: Dict[str, torch.Tensor], cfg: VimConfig, scan: str) -> VisionMamba:
    """training/vim_model.py's VisionMamba with the checkpoint loaded (strict: the official keys and shapes), in
    eval mode, its mixers set to `scan` (vim_model.SCAN_CHOICES)."""
    model = VisionMamba(cfg)
    model.load_state_dict(sd, strict=True)
    model.set_scan(scan)
    return model.eval()


def bench_input(cfg: VimConfig) -> torch.Tensor:
    """[1, C, H, W] float32: x_i = 2 sin(12.9898 i) in float64, rounded to float32; the synthetic input of
    `vimedge bench` (src/cli/bench.ts), so every row of the speed table runs the same image."""
    n = cfg.in_chans * cfg.img_size * cfg.img_size
    x = torch.sin(torch.arange(n, dtype=torch.float64) * 12.9898) * 2
    return x.float().reshape(1, cfg.in_chans, cfg.img_size, cfg.img_size)


def describe(cfg: VimConfig, model: VisionMamba) -> dict:
    return {'img_size': cfg.img_size, 'in_chans': cfg.in_chans, 'patch': cfg.patch, 'stride': cfg.stride,
            'embed_dim': cfg.embed_dim, 'depth': cfg.depth, 'num_classes': cfg.num_classes, 'tokens': cfg.tokens,
            'params': sum(p.numel() for p in model.parameters())}

"""The model's facts, in one place: the shape config and its derived dims, the published variants, the official
state-dict key layout (docs/MODEL.md §1, §3), and reading a checkpoint into a config.

Every other Python file (training, fixture generators, peers) takes these from here.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch

RMS_EPS = 1e-5             # norm_epsilon of every RMSNorm (MODEL.md §1)
SOFTPLUS_THRESHOLD = 20.0  # F.softplus default, also used by the CUDA scan kernel (MODEL.md §2.3)

Tensors = Dict[str, torch.Tensor]


@dataclass(frozen=True)
class VimConfig:
    """Shape of one Vim classifier. Everything else (E, R, G, M, L, c) is derived."""
    img_size: int       # H == W
    in_chans: int       # C
    patch: int          # P
    stride: int         # S
    embed_dim: int      # D
    depth: int
    num_classes: int
    d_state: int = 16   # N
    d_conv: int = 4     # K
    expand: int = 2     # E = expand * D

    @property
    def inner(self) -> int:          # E
        return self.expand * self.embed_dim

    @property
    def dt_rank(self) -> int:        # R = ceil(D / 16)
        return -(-self.embed_dim // 16)

    @property
    def grid(self) -> int:           # G
        return (self.img_size - self.patch) // self.stride + 1

    @property
    def num_patches(self) -> int:    # M
        return self.grid * self.grid

    @property
    def tokens(self) -> int:         # L
        return self.num_patches + 1

    @property
    def cls_index(self) -> int:      # c
        return self.num_patches // 2

    def replace(self, **changes) -> 'VimConfig':
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The fields and the derived dims, for logs and manifests."""
        return {**dataclasses.asdict(self), 'inner': self.inner, 'dt_rank': self.dt_rank, 'grid': self.grid,
                'tokens': self.tokens, 'cls_index': self.cls_index}


# The published models. 'vim-fmnist' is the shipped one (models/vim_fmnist.pth, trained by training/train.py:
# 6,784,330 parameters); 'vim-tiny' is hustvl/Vim's Vim-Ti at 224 x 224 (vim_t_midclstok_76p1acc.pth); 'vim-small'
# and 'vim-base' are its Vim-S and Vim-B shapes (MODEL.md §1).
VARIANTS: Dict[str, VimConfig] = {
    'vim-fmnist': VimConfig(img_size=28, in_chans=1, patch=4, stride=4, embed_dim=192, depth=24, num_classes=10),
    'vim-tiny': VimConfig(img_size=224, in_chans=3, patch=16, stride=16, embed_dim=192, depth=24, num_classes=1000),
    'vim-small': VimConfig(img_size=224, in_chans=3, patch=16, stride=16, embed_dim=384, depth=24, num_classes=1000),
    'vim-base': VimConfig(img_size=224, in_chans=3, patch=16, stride=16, embed_dim=768, depth=24, num_classes=1000),
}


def direction_keys(backward: bool) -> Dict[str, str]:
    """One direction's mixer parameter names (without the 'layers.{i}.mixer.' prefix): role -> key."""
    s = '_b' if backward else ''
    return {'conv_w': f'conv1d{s}.weight', 'conv_b': f'conv1d{s}.bias', 'x_proj_w': f'x_proj{s}.weight',
            'dt_proj_w': f'dt_proj{s}.weight', 'dt_proj_b': f'dt_proj{s}.bias',
            'A_log': 'A_b_log' if backward else 'A_log', 'D': 'D_b' if backward else 'D'}


def expected_shapes(cfg: VimConfig) -> Dict[str, Tuple[int, ...]]:
    """Official state-dict keys -> shapes, in the order the module's state_dict() lists them (MODEL.md §3)."""
    return state_dict_shapes(D=cfg.embed_dim, E=cfg.inner, N=cfg.d_state, R=cfg.dt_rank, K=cfg.d_conv,
                             C=cfg.in_chans, P=cfg.patch, L=cfg.tokens, classes=cfg.num_classes, depth=cfg.depth)


def state_dict_shapes(D: int, E: int, N: int, R: int, K: int, C: int, P: int, L: int, classes: int,
                      depth: int) -> Dict[str, Tuple[int, ...]]:
    """The key layout for any dimensions, including ones no VimConfig derives (E != 2D, zero sizes): what
    the fixture generators use to build checkpoints a converter must refuse."""
    shapes: Dict[str, Tuple[int, ...]] = {
        'cls_token': (1, 1, D),
        'pos_embed': (1, L, D),
        'patch_embed.proj.weight': (D, C, P, P),
        'patch_embed.proj.bias': (D,),
        'head.weight': (classes, D),
        'head.bias': (classes,),
    }
    for i in range(depth):
        m = f'layers.{i}.mixer.'
        shapes.update({
            m + 'A_log': (E, N), m + 'D': (E,), m + 'A_b_log': (E, N), m + 'D_b': (E,),
            m + 'in_proj.weight': (2 * E, D),
            m + 'conv1d.weight': (E, 1, K), m + 'conv1d.bias': (E,),
            m + 'x_proj.weight': (R + 2 * N, E),
            m + 'dt_proj.weight': (E, R), m + 'dt_proj.bias': (E,),
            m + 'conv1d_b.weight': (E, 1, K), m + 'conv1d_b.bias': (E,),
            m + 'x_proj_b.weight': (R + 2 * N, E),
            m + 'dt_proj_b.weight': (E, R), m + 'dt_proj_b.bias': (E,),
            m + 'out_proj.weight': (D, E),
            f'layers.{i}.norm.weight': (D,),
        })
    shapes['norm_f.weight'] = (D,)
    return shapes


def check_state_dict(sd: Tensors, cfg: VimConfig) -> None:
    """Raise if `sd` does not hold exactly the official keys with the official shapes for `cfg`."""
    want = expected_shapes(cfg)
    missing, extra = sorted(set(want) - set(sd)), sorted(set(sd) - set(want))
    if missing or extra:
        raise ValueError(f'state dict keys differ: missing {missing[:5]}..., unexpected {extra[:5]}...')
    for k, shape in want.items():
        if tuple(sd[k].shape) != shape:
            raise ValueError(f'{k}: shape {tuple(sd[k].shape)}, expected {shape}')


def config_from_state_dict(sd: Tensors, image_size: Optional[int] = None, stride: Optional[int] = None) -> VimConfig:
    """Shape config from the official keys. The patch grid G comes from pos_embed (L = G*G + 1); the image side
    and the stride are not stored: without either, stride = patch (H = G*P); with one, the other follows from
    G = (H - P) // S + 1."""
    w = sd['patch_embed.proj.weight']                  # [D, C, P, P]
    D, C, P = w.shape[0], w.shape[1], w.shape[-1]
    L = sd['pos_embed'].shape[1]
    G = math.isqrt(L - 1)
    if G * G != L - 1:
        raise ValueError(f'pos_embed has {L} rows: not a square patch grid plus one cls token')
    if image_size is None and stride is None:
        stride = P
    if image_size is None:
        image_size = (G - 1) * stride + P
    elif stride is None:
        stride = P if G == 1 else (image_size - P) // (G - 1)
    if (image_size - P) // stride + 1 != G:
        raise ValueError(f'image {image_size}, patch {P}, stride {stride} give a {(image_size - P) // stride + 1}'
                         f'-wide grid, but pos_embed needs {G}')
    depth = len({k.split('.')[1] for k in sd if k.startswith('layers.')})
    E, N = sd['layers.0.mixer.A_log'].shape
    K = sd['layers.0.mixer.conv1d.weight'].shape[-1]
    return VimConfig(img_size=image_size, in_chans=C, patch=P, stride=stride, embed_dim=D, depth=depth,
                     num_classes=sd['head.weight'].shape[0], d_state=N, d_conv=K, expand=E // D)


def load_state_dict(path: str) -> Tensors:
    """The state dict of an official checkpoint {'model': state_dict, ...} (a bare state dict is accepted too),
    tensors as stored: the reference casts them to its dtype, nn.Module.load_state_dict to the parameters'."""
    obj = torch.load(path, map_location='cpu')
    return obj['model'] if isinstance(obj, dict) and 'model' in obj else obj

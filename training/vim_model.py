"""Vision Mamba (Vim) classifier for training, with the official state-dict layout (spec §3).

The forward pass is spec §2 (bidirectional "v2" blocks, class token in the middle, absolute position embedding,
RMSNorm eps 1e-5, residual stream in fp32). Module and parameter names are chosen so that `state_dict()` holds
exactly the official keys, in the official order:

  cls_token, pos_embed, patch_embed.proj.{weight,bias}, head.{weight,bias},
  layers.{i}.mixer.{A_log, D, A_b_log, D_b, in_proj.weight, conv1d.{weight,bias}, x_proj.weight,
                    dt_proj.{weight,bias}, conv1d_b.{weight,bias}, x_proj_b.weight, dt_proj_b.{weight,bias},
                    out_proj.weight},
  layers.{i}.norm.weight, norm_f.weight

Glossary (spec §1 notation; `Bsz` is the batch size so that `B`/`Bm` can be the SSM input matrix):
  C_in input channels (1 for Fashion-MNIST)    P patch side, S patch stride     G = (img - P) // S + 1 grid side
  M = G*G patches     L = M + 1 tokens         c = M // 2 index of the class token
  D embed dim         E = 2D inner dim         N state size (16)   R = ceil(D / 16) dt rank   K conv width (4)

Shipped default (Fashion-MNIST): img 28, C_in 1, P = S = 4 -> G 7, M 49, L 50, c 24; D 192, depth 24, E 384,
N 16, R 12, K 4, 10 classes: 6,784,330 parameters.

Mixed precision: under autocast the Linear layers and the patch conv run in bf16; the depthwise conv, softplus,
exp, the scan, the gate, RMSNorm and the residual stream are fp32 (spec §5). Every cast below that looks
redundant is there for that reason. float64 inputs stay float64 (tests compare against a float64 loop).

Activation memory for training, estimated then measured (H100, bf16 autocast): the PyTorch path keeps ~19
[L, E]-fp32-sized tensors per image and layer (RMSNorm in/out, in_proj output, conv in/out and silu outputs of
both directions, dt and delta before/after softplus, scan outputs, gate terms): ~1.5 MB per image-layer,
measured 7.1 GiB at batch 256. The fused Triton path keeps fewer (~0.7 MB per image-layer, 4.3 GiB at 256) plus,
by default, the scan states for the backward (2 directions x [L, E, N] fp32 = 2.4 MB per image-layer):
18.2 GiB at 256, 36.1 GiB at 512. Well under the 60 GB line, so no activation checkpointing is needed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

import scan as scan_ops
from scan import SCANS, selective_scan_chunked


@dataclass
class VimConfig:
    img_size: int = 28
    in_chans: int = 1          # C_in
    patch: int = 4             # P
    stride: int = 4            # S
    num_classes: int = 10
    embed_dim: int = 192       # D
    depth: int = 24
    d_state: int = 16          # N
    d_conv: int = 4            # K
    expand: int = 2            # E = expand * D
    norm_eps: float = 1e-5
    drop_path: float = 0.0     # max stochastic-depth rate (last layer); training only

    @property
    def inner(self) -> int:        # E
        return self.expand * self.embed_dim

    @property
    def dt_rank(self) -> int:      # R
        return math.ceil(self.embed_dim / 16)

    @property
    def grid(self) -> int:         # G
        return (self.img_size - self.patch) // self.stride + 1

    @property
    def num_patches(self) -> int:  # M
        return self.grid * self.grid

    @property
    def tokens(self) -> int:       # L
        return self.num_patches + 1

    @property
    def cls_index(self) -> int:    # c
        return self.num_patches // 2

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(inner=self.inner, dt_rank=self.dt_rank, grid=self.grid, tokens=self.tokens,
                 cls_index=self.cls_index)
        return d


def _hi(t: torch.Tensor) -> torch.Tensor:
    """fp32 for bf16/fp16/fp32 tensors; float64 stays float64 (tests)."""
    return t if t.dtype == torch.float64 else t.float()


def _autocast_off(t: torch.Tensor):
    return torch.autocast(device_type='cuda' if t.is_cuda else 'cpu', enabled=False)


class RMSNorm(nn.Module):
    """x * w / sqrt(mean(x^2) + eps) over the last dim, computed in fp32 (or float64). Key: `weight` only."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _hi(x)
        w = self.weight.to(x.dtype)
        if hasattr(F, 'rms_norm') and x.is_cuda:     # torch >= 2.4 has a fused kernel; 1.13 does not
            return F.rms_norm(x, (x.shape[-1],), w, self.eps)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w


class PatchEmbed(nn.Module):
    def __init__(self, cfg: VimConfig):
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, cfg.patch, cfg.stride)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img [Bsz, C_in, H, W] -> patch tokens [Bsz, M, D], token m = gy * G + gx."""
        return self.proj(img).flatten(2).transpose(1, 2)


class Mixer(nn.Module):
    """Bidirectional Mamba mixer (bimamba "v2", spec §2.3). Input/output [Bsz, L, D]."""

    def __init__(self, cfg: VimConfig):
        super().__init__()
        D, E, N, R, K = cfg.embed_dim, cfg.inner, cfg.d_state, cfg.dt_rank, cfg.d_conv
        self.E, self.N, self.R, self.K = E, N, R, K
        # Own parameters first (state_dict order: A_log, D, A_b_log, D_b).
        A_init = torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1)   # A = -(1..N) per channel
        self.A_log = nn.Parameter(A_init.clone())
        self.D = nn.Parameter(torch.ones(E))
        self.A_b_log = nn.Parameter(A_init.clone())
        self.D_b = nn.Parameter(torch.ones(E))
        self.in_proj = nn.Linear(D, 2 * E, bias=False)
        self.conv1d = nn.Conv1d(E, E, K, groups=E, padding=K - 1, bias=True)
        self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        self.conv1d_b = nn.Conv1d(E, E, K, groups=E, padding=K - 1, bias=True)
        self.x_proj_b = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj_b = nn.Linear(R, E, bias=True)
        self.out_proj = nn.Linear(E, D, bias=False)
        self.scan_impl = 'chunked'
        self.conv_impl = 'auto'        # 'conv' (grouped F.conv1d; default on CUDA) or 'shift' (default on CPU)
        self.scan_chunk: Optional[int] = None

    def conv_both(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Depthwise conv + SiLU of both branches in one grouped conv; x [Bsz, L, E] -> u_f, u_b [Bsz, L, E].

        Output channel 2e is the causal conv of channel e, 2e + 1 the anti-causal one (the backward branch's taps,
        mirrored: u_b[t] = b + sum_k w_b[k] x[t + K-1 - k], which is the flip / causal conv / flip of the source).
        With padding K-1 on both sides, output index j reads x[j-K+1 .. j]: causal at j = t, anti-causal at
        j = t + K - 1. No flipped copies of the sequence are made."""
        L, E, K = x.shape[1], self.E, self.K
        impl = self.conv_impl if self.conv_impl != 'auto' else ('conv' if x.is_cuda else 'shift')
        if impl == 'shift':
            return self._conv_shift(x)
        with _autocast_off(x):
            xt = _hi(x).transpose(1, 2)                                                   # [Bsz, E, L]
            w = torch.stack([self.conv1d.weight, self.conv1d_b.weight.flip(-1)], dim=1).reshape(2 * E, 1, K)
            b = torch.stack([self.conv1d.bias, self.conv1d_b.bias], dim=1).reshape(2 * E)
            out = F.conv1d(xt, w.to(xt.dtype), b.to(xt.dtype), padding=K - 1, groups=E)  # [Bsz, 2E, L+K-1]
            u_f = F.silu(out[:, 0::2, :L]).transpose(1, 2).contiguous()
            u_b = F.silu(out[:, 1::2, K - 1:]).transpose(1, 2).contiguous()
        return u_f, u_b

    def _conv_shift(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The same two convs as K shifted multiply-adds in [Bsz, L, E] layout. On a CPU this is ~6x faster than
        oneDNN's grouped conv with two outputs per group; on a GPU cuDNN's single kernel is preferred."""
        L, K = x.shape[1], self.K
        with _autocast_off(x):
            x = _hi(x)
            xp = F.pad(x, (0, 0, K - 1, K - 1))                                           # [Bsz, L+2K-2, E]
            wf = self.conv1d.weight[:, 0, :].to(x.dtype)                                  # [E, K]
            wb = self.conv1d_b.weight[:, 0, :].to(x.dtype)
            u_f = self.conv1d.bias.to(x.dtype) + xp[:, 0:L] * wf[:, 0]                    # taps x[t-K+1 .. t]
            u_b = self.conv1d_b.bias.to(x.dtype) + xp[:, 2 * K - 2:2 * K - 2 + L] * wb[:, 0]   # x[t+K-1 .. t]
            for k in range(1, K):
                u_f = u_f.addcmul(xp[:, k:k + L], wf[:, k])
                u_b = u_b.addcmul(xp[:, 2 * K - 2 - k:2 * K - 2 - k + L], wb[:, k])
            return F.silu(u_f), F.silu(u_b)

    def ssm(self, u: torch.Tensor, x_proj: nn.Linear, dt_proj: nn.Linear, A_log: torch.Tensor,
            D_skip: torch.Tensor, reverse: bool) -> torch.Tensor:
        """One direction after the conv: u [Bsz, L, E] -> y [Bsz, L, E] (scan + D skip, before the gate)."""
        R, N = self.R, self.N
        xd = x_proj(u)                                                   # [Bsz, L, R + 2N]: dt | B | C
        dtr, Bm, Cm = torch.split(xd, [R, N, N], dim=-1)
        dt = F.linear(dtr, dt_proj.weight)                               # [Bsz, L, E]; bias added in fp32 below
        if self.scan_impl == 'triton':                                   # softplus, scan, D skip: one kernel
            A = -torch.exp(A_log.float())
            return scan_ops.ssm_scan_triton(u, dt, dt_proj.bias, A, Bm, Cm, D_skip, reverse=reverse)
        delta = F.softplus(_hi(dt) + dt_proj.bias.to(_hi(dt).dtype))     # fp32, threshold 20 as the CUDA kernel
        A = -torch.exp(A_log.to(delta.dtype))                            # [E, N]
        with _autocast_off(u):
            scan = SCANS[self.scan_impl]
            args = (u, delta, A, _hi(Bm), _hi(Cm))
            if scan is selective_scan_chunked:
                y = scan(*args, reverse=reverse, chunk=self.scan_chunk)
            else:
                y = scan(*args, reverse=reverse)
        return y + u * D_skip.to(u.dtype)

    def forward(self, n: torch.Tensor) -> torch.Tensor:
        xz = self.in_proj(n)                                             # [Bsz, L, 2E]
        x, z = xz.chunk(2, dim=-1)
        fused = self.scan_impl == 'triton'                               # fused GPU kernels (scan.py)
        if fused:
            u_f, u_b = scan_ops.conv_silu_triton(x, self.conv1d.weight, self.conv1d.bias,
                                                 self.conv1d_b.weight, self.conv1d_b.bias)
        else:
            u_f, u_b = self.conv_both(x)
        y_f = self.ssm(u_f, self.x_proj, self.dt_proj, self.A_log, self.D, reverse=False)
        y_b = self.ssm(u_b, self.x_proj_b, self.dt_proj_b, self.A_b_log, self.D_b, reverse=True)
        if fused:
            y = scan_ops.gate_triton(y_f, y_b, z)
        else:
            y = (y_f + y_b) * (0.5 * F.silu(_hi(z)))                     # if_divide_out: halve, then gate (fp32)
        return self.out_proj(y)                                          # [Bsz, L, D]


class Block(nn.Module):
    """x -> x + DropPath(Mixer(RMSNorm(x))); the source's fused add+norm is the same function (spec §2.2)."""

    def __init__(self, cfg: VimConfig, drop_path: float):
        super().__init__()
        self.mixer = Mixer(cfg)
        self.norm = RMSNorm(cfg.embed_dim, cfg.norm_eps)
        self.drop_path = drop_path

    def forward(self, resid: torch.Tensor) -> torch.Tensor:
        h = self.mixer(self.norm(resid))
        if self.training and self.drop_path > 0:
            # Stochastic depth per image: drop the whole mixer output, rescale the survivors.
            keep = 1.0 - self.drop_path
            mask = torch.empty(h.shape[0], 1, 1, device=h.device, dtype=resid.dtype).bernoulli_(keep)
            h = h * (mask / keep)
        return resid + h                                                 # fp32 residual stream


class VisionMamba(nn.Module):
    def __init__(self, cfg: VimConfig):
        super().__init__()
        self.cfg = cfg
        D, L = cfg.embed_dim, cfg.tokens
        # Registration order = state_dict order (spec §3).
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, L, D))
        self.patch_embed = PatchEmbed(cfg)
        self.head = nn.Linear(D, cfg.num_classes)
        rates = [cfg.drop_path * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]
        self.layers = nn.ModuleList([Block(cfg, r) for r in rates])
        self.norm_f = RMSNorm(D, cfg.norm_eps)
        self.reset_parameters()

    # -- initialisation (as the Vim / Mamba sources do it; spec §5) ---------------------------------------------
    @torch.no_grad()
    def reset_parameters(self, dt_min: float = 1e-3, dt_max: float = 0.1, dt_floor: float = 1e-4) -> None:
        cfg = self.cfg
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        fan_in = cfg.in_chans * cfg.patch * cfg.patch                  # LeCun normal for the patch conv
        nn.init.trunc_normal_(self.patch_embed.proj.weight, std=math.sqrt(1.0 / fan_in) / 0.87962566103423978)
        nn.init.zeros_(self.patch_embed.proj.bias)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        for layer in self.layers:
            m = layer.mixer
            for lin in (m.in_proj, m.x_proj, m.x_proj_b, m.out_proj):
                lin.reset_parameters()                                  # kaiming-uniform(a=sqrt(5)), as nn.Linear
            # Pre-norm residual rescale: out_proj / sqrt(depth) keeps the residual stream's growth in check.
            m.out_proj.weight.div_(math.sqrt(cfg.depth))
            for conv in (m.conv1d, m.conv1d_b):
                conv.reset_parameters()
            for dtp in (m.dt_proj, m.dt_proj_b):
                bound = m.R ** -0.5
                nn.init.uniform_(dtp.weight, -bound, bound)
                # softplus(bias) log-uniform in [dt_min, dt_max]: bias = inverse softplus of that dt.
                dt = torch.exp(torch.rand(m.E) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
                dt = dt.clamp(min=dt_floor)
                dtp.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            A_init = torch.log(torch.arange(1, m.N + 1, dtype=torch.float32)).repeat(m.E, 1)
            m.A_log.copy_(A_init)
            m.A_b_log.copy_(A_init)
            m.D.fill_(1.0)
            m.D_b.fill_(1.0)
            layer.norm.weight.fill_(1.0)
        self.norm_f.weight.fill_(1.0)

    def set_scan(self, impl: str, chunk: Optional[int] = None) -> None:
        """'triton' (fused GPU kernels for conv, scan and gate), 'chunked' (PyTorch, anywhere) or 'ref' (slow
        sequential loop, tests)."""
        if impl not in SCANS:
            raise ValueError(f'unknown scan {impl!r}; one of {sorted(SCANS)}')
        for layer in self.layers:
            layer.mixer.scan_impl = impl
            layer.mixer.scan_chunk = chunk

    # -- forward ---------------------------------------------------------------------------------------------
    def embed(self, img: torch.Tensor) -> torch.Tensor:
        """img [Bsz, C_in, H, W] -> tokens after cls insertion and pos add, [Bsz, L, D] (fp32/float64)."""
        x = self.patch_embed(img)                                        # [Bsz, M, D]
        x = x.to(torch.promote_types(x.dtype, self.pos_embed.dtype))
        c = self.cfg.cls_index
        cls = self.cls_token.to(x.dtype).expand(x.shape[0], -1, -1)
        x = torch.cat([x[:, :c], cls, x[:, c:]], dim=1)                  # cls at token c (c patches precede it)
        return x + self.pos_embed.to(x.dtype)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img [Bsz, C_in, H, W] (normalised) -> logits [Bsz, num_classes]."""
        x = self.embed(img)
        for layer in self.layers:
            x = layer(x)
        c = self.cfg.cls_index
        f = self.norm_f(x[:, c])       # norm_f is per token: normalising only the cls row gives the same feature
        return self.head(f)

    # -- optimiser helpers -------------------------------------------------------------------------------------
    def param_groups(self, weight_decay: float) -> List[Dict]:
        """AdamW groups: decay on matrices and convs; none on norms, biases, A_log/D, pos_embed, cls_token."""
        no_decay_names = ('A_log', 'A_b_log', 'D', 'D_b', 'pos_embed', 'cls_token')
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.ndim <= 1 or name.split('.')[-1] in no_decay_names:
                no_decay.append(p)
            else:
                decay.append(p)
        return [{'params': decay, 'weight_decay': weight_decay}, {'params': no_decay, 'weight_decay': 0.0}]


def expected_shapes(cfg: VimConfig) -> Dict[str, Tuple[int, ...]]:
    """The official key -> shape table of spec §3 for this config, in state_dict order."""
    D, E, N, R, K = cfg.embed_dim, cfg.inner, cfg.d_state, cfg.dt_rank, cfg.d_conv
    shapes: Dict[str, Tuple[int, ...]] = {
        'cls_token': (1, 1, D), 'pos_embed': (1, cfg.tokens, D),
        'patch_embed.proj.weight': (D, cfg.in_chans, cfg.patch, cfg.patch), 'patch_embed.proj.bias': (D,),
        'head.weight': (cfg.num_classes, D), 'head.bias': (cfg.num_classes,),
    }
    for i in range(cfg.depth):
        p = f'layers.{i}.'
        shapes.update({
            p + 'mixer.A_log': (E, N), p + 'mixer.D': (E,), p + 'mixer.A_b_log': (E, N), p + 'mixer.D_b': (E,),
            p + 'mixer.in_proj.weight': (2 * E, D),
            p + 'mixer.conv1d.weight': (E, 1, K), p + 'mixer.conv1d.bias': (E,),
            p + 'mixer.x_proj.weight': (R + 2 * N, E),
            p + 'mixer.dt_proj.weight': (E, R), p + 'mixer.dt_proj.bias': (E,),
            p + 'mixer.conv1d_b.weight': (E, 1, K), p + 'mixer.conv1d_b.bias': (E,),
            p + 'mixer.x_proj_b.weight': (R + 2 * N, E),
            p + 'mixer.dt_proj_b.weight': (E, R), p + 'mixer.dt_proj_b.bias': (E,),
            p + 'mixer.out_proj.weight': (D, E),
            p + 'norm.weight': (D,),
        })
    shapes['norm_f.weight'] = (D,)
    return shapes

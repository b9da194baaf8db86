"""Vision Mamba (Vim) classifier for training, with the official state-dict layout (MODEL.md §3).

The forward pass is MODEL.md §2 (bidirectional "v2" blocks, class token in the middle, absolute position embedding,
RMSNorm eps 1e-5, residual stream in fp32), batched. The model's facts (VimConfig, the published variants, the key
layout) and the reference it is tested against (the scan loop, the functional forward) are tools/vim_reference/;
tools/ must be on sys.path (train.py and test_scan.py put it there, the tools/ scripts run from it). Module and
parameter names are chosen so that `state_dict()` holds exactly the official keys, in the official order
(vim_reference.expected_shapes).

Glossary: tools/vim_reference/__init__.py (Bsz batch, C input channels, L tokens, D embed dim, E = 2D inner dim,
N state size, R dt rank, K conv width, c cls index). The shipped model is VARIANTS['vim-fmnist']: img 28, C 1,
P = S = 4 -> G 7, M 49, L 50, c 24; D 192, depth 24, E 384, N 16, R 12, K 4, 10 classes: 6,784,330 parameters.

The mixer's implementation is chosen by name (`VisionMamba.set_scan`, the one hook; SCAN_CHOICES):
  'ref'      the reference scan loop (tools/vim_reference/scan.py): slow, tests
  'chunked'  training/scan.py's exact chunked scan (CPU, GPU fallback, evaluation)
  'triton'   training/scan.py's fused GPU kernels for conv + SiLU, softplus + scan + D skip, and gate
  'joint'    ONNX export: both directions in one traced token loop (`Mixer.forward_joint` says why)

Mixed precision: under autocast the Linear layers and the patch conv run in bf16; the depthwise conv, softplus,
exp, the scan, the gate, RMSNorm and the residual stream are fp32 (MODEL.md §5). Every cast below that looks
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
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from vim_reference import RMS_EPS, VimConfig, selective_scan
import scan as scan_ops
from scan import selective_scan_chunked

# Scans with the reference's signature fn(u, delta, A, Bm, Cm, reverse) -> y; 'triton' and 'joint' replace more
# of the mixer than the scan, so Mixer.forward dispatches them itself.
SCANS = {'ref': selective_scan, 'chunked': selective_scan_chunked}
SCAN_CHOICES = tuple(SCANS) + ('triton', 'joint')


def _hi(t: torch.Tensor) -> torch.Tensor:
    """fp32 for bf16/fp16 tensors; fp32 and float64 (tests) stay as they are (and leave no cast in a trace)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _autocast_off(t: torch.Tensor):
    return torch.autocast(device_type='cuda' if t.is_cuda else 'cpu', enabled=False)


class RMSNorm(nn.Module):
    """x * w / sqrt(mean(x^2) + eps) over the last dim, computed in fp32 (or float64). Key: `weight` only."""

    def __init__(self, dim: int, eps: float = RMS_EPS):
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
    """Bidirectional Mamba mixer (bimamba "v2", MODEL.md §2.3). Input/output [Bsz, L, D]."""

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

    def project(self, u: torch.Tensor, x_proj: nn.Linear, dt_proj: nn.Linear):
        """Input-dependent SSM parameters of one direction: u [Bsz, L, E] -> dt [Bsz, L, E] (before dt_proj's
        bias, which is added in fp32 with the softplus: `delta`), Bm, Cm [Bsz, L, N] (column views of x_proj)."""
        R, N = self.R, self.N
        dtr, Bm, Cm = torch.split(x_proj(u), [R, N, N], dim=-1)         # x_proj rows: dt | B | C
        return F.linear(dtr, dt_proj.weight), Bm, Cm

    @staticmethod
    def delta(dt: torch.Tensor, dt_bias: torch.Tensor) -> torch.Tensor:
        """softplus(dt + bias) in fp32 (float64 stays float64), threshold 20 as the CUDA kernel. [Bsz, L, E]."""
        dt = _hi(dt)
        return F.softplus(dt + (dt_bias if dt_bias.dtype == dt.dtype else dt_bias.to(dt.dtype)))

    def ssm(self, u: torch.Tensor, x_proj: nn.Linear, dt_proj: nn.Linear, A_log: torch.Tensor,
            D_skip: torch.Tensor, reverse: bool) -> torch.Tensor:
        """One direction after the conv: u [Bsz, L, E] -> y [Bsz, L, E] (scan + D skip, before the gate)."""
        dt, Bm, Cm = self.project(u, x_proj, dt_proj)
        if self.scan_impl == 'triton':                                   # softplus, scan, D skip: one kernel
            A = -torch.exp(A_log.float())
            return scan_ops.ssm_scan_triton(u, dt, dt_proj.bias, A, Bm, Cm, D_skip, reverse=reverse)
        delta = self.delta(dt, dt_proj.bias)
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
        """n [Bsz, L, D] (the block's normalised input) -> mixer output [Bsz, L, D]."""
        xz = self.in_proj(n)                                             # [Bsz, L, 2E]
        x, z = xz.chunk(2, dim=-1)
        if self.scan_impl == 'joint':
            return self.forward_joint(x, z)
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

    def forward_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The mixer for ONNX export, fp32: x, z [Bsz, L, E] (in_proj's halves) -> [Bsz, L, D].

        ONNX has no selective-scan operator and none may be added (standard operators only), so the recurrence is
        traced into plain ops. Here both directions share one unrolled token loop: the backward direction's inputs
        are flipped to its scan order and stacked with the forward ones along the channels ([Bsz, L, 2E, N]), so
        L steps (2L nodes) serve both directions instead of 4L nodes. A, B, C and D stay per direction (a [2, ...]
        axis): the reference scan's arithmetic, regrouped (test_scan.py checks it against the reference).

        Four spellings were exported and timed with onnxruntime 1.30 on Vim-Tiny 224 (L = 197, 24 layers; batch 1,
        1 thread, 2-core AMD EPYC VM, median ms):
          spelling   nodes    onnxruntime-node  onnxruntime-web (wasm)  how
          joint      14,757   287               746    this method
          unrolled   24,237   340               738    the same loop per direction: twice the nodes
          chunked    12,333   392               759    the chunked scan out of place (local scans of T ~ sqrt(L)
                                                       tokens, cumulative decays, a carry across chunks): fewer
                                                       nodes, but the extra passes over state-sized tensors cost
                                                       more than the per-node dispatch they save
          loop       ~8,000   3-4x slower on the 50-token model: a torch.jit.script loop exported as an ONNX Loop,
                              whose per-iteration setup dwarfs the two elementwise ops of its body
        'joint' is the fastest on the native runtime, ties on wasm, and has half the nodes of 'unrolled', which
        halves onnxruntime's session-creation (graph optimisation) time.
        """
        E, N = self.E, self.N
        u_f, u_b = self.conv_both(x)
        Bsz, L = int(u_f.shape[0]), int(u_f.shape[1])
        u_b = u_b.flip(1)                                                # backward direction in its scan order
        dt_f, B_f, C_f = self.project(u_f, self.x_proj, self.dt_proj)
        dt_b, B_b, C_b = self.project(u_b, self.x_proj_b, self.dt_proj_b)
        u = torch.cat([u_f, u_b], dim=-1)                                # [Bsz, L, 2E]
        delta = torch.cat([self.delta(dt_f, self.dt_proj.bias), self.delta(dt_b, self.dt_proj_b.bias)], dim=-1)
        A = -torch.exp(torch.cat([self.A_log, self.A_b_log], dim=0))     # [2E, N]
        Bm = torch.stack([B_f, B_b], dim=2).unsqueeze(3)                 # [Bsz, L, 2, 1, N]
        Cm = torch.stack([C_f, C_b], dim=2).unsqueeze(-1)                # [Bsz, L, 2, N, 1]
        a = torch.exp(delta.unsqueeze(-1) * A)                           # [Bsz, L, 2E, N]
        b = ((delta * u).reshape(Bsz, L, 2, E, 1) * Bm).reshape(Bsz, L, 2 * E, N)
        at, bt = a.split(1, dim=1), b.split(1, dim=1)
        h, hs = None, []
        for t in range(L):
            h = bt[t] if h is None else at[t] * h + bt[t]                # the state is 0 before the first token
            hs.append(h)
        H = torch.cat(hs, dim=1).reshape(Bsz, L, 2, E, N)
        y = torch.matmul(H, Cm).reshape(Bsz, L, 2, E) + u.reshape(Bsz, L, 2, E) * torch.stack([self.D, self.D_b])
        y_f, y_b = y[:, :, 0], y[:, :, 1].flip(1)                        # backward result back in token order
        return self.out_proj((y_f + y_b) * (0.5 * F.silu(z)))


class Block(nn.Module):
    """x -> x + DropPath(Mixer(RMSNorm(x))); the source's fused add+norm is the same function (MODEL.md §2.2)."""

    def __init__(self, cfg: VimConfig, drop_path: float):
        super().__init__()
        self.mixer = Mixer(cfg)
        self.norm = RMSNorm(cfg.embed_dim)
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
    def __init__(self, cfg: VimConfig, drop_path: float = 0.0):
        """drop_path: the stochastic-depth rate of the last block (training only; rates rise linearly from 0)."""
        super().__init__()
        self.cfg = cfg
        D, L = cfg.embed_dim, cfg.tokens
        # Registration order = state_dict order (MODEL.md §3).
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, L, D))
        self.patch_embed = PatchEmbed(cfg)
        self.head = nn.Linear(D, cfg.num_classes)
        rates = [drop_path * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]
        self.layers = nn.ModuleList([Block(cfg, r) for r in rates])
        self.norm_f = RMSNorm(D)
        self.reset_parameters()

    # -- initialisation (as the Vim / Mamba sources do it; MODEL.md §5) ---------------------------------------------
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
        """The mixer implementation, one of SCAN_CHOICES (module docstring); `chunk`: T of the chunked scan."""
        if impl not in SCAN_CHOICES:
            raise ValueError(f'unknown scan {impl!r}; one of {sorted(SCAN_CHOICES)}')
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


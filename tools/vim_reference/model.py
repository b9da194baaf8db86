"""Functional PyTorch reference of the Vision Mamba (Vim) classifier forward pass, one image at a time.

Implements MODEL.md §2 literally, in any floating dtype: float64 is the "truth", float32 is the comparison target for
the TS/WASM fp32 path. It reads the official state-dict layout (MODEL.md §3, config.py) and needs nothing but torch
(no mamba_ssm, no CUDA, no Triton). All tensors are for one image (no batch dimension); PyTorch Linear weights
are [out, in], y = x @ W^T. Names: the glossary in __init__.py.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional

import torch
import torch.nn.functional as F

from .config import RMS_EPS, SOFTPLUS_THRESHOLD, Tensors, VimConfig, direction_keys
from .scan import selective_scan

SELF_CHECK_TOL = 1e-12     # float64 agreement required between equivalent formulations


# --------------------------------------------------------------------------------------------------------------
# Small ops
# --------------------------------------------------------------------------------------------------------------

def silu(v: torch.Tensor) -> torch.Tensor:
    return v * torch.sigmoid(v)


def softplus(v: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(v)), returned as v itself above the threshold (as F.softplus and the scan kernel do)."""
    return torch.where(v > SOFTPLUS_THRESHOLD, v, torch.log1p(torch.exp(torch.clamp(v, max=SOFTPLUS_THRESHOLD))))


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = RMS_EPS) -> torch.Tensor:
    """[L, D] -> [L, D]. Per-token statistic over the D channels, per-channel scale; no mean, no bias (MODEL.md §2.2)."""
    return x * weight / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + eps)


def causal_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Depthwise causal conv as in causal_conv1d_ref: x [L, E], w [E, 1, K], b [E] -> [L, E].

    u[t] = b + sum_k w[k] * x[t - (K-1) + k]; F.conv1d pads K-1 zeros on both sides, keeping the first L
    outputs drops the ones that would look into the future.
    """
    L, E = x.shape
    K = w.shape[-1]
    return F.conv1d(x.T[None], w, b, padding=K - 1, groups=E)[0, :, :L].T


def anticausal_conv_direct(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """What the backward branch's conv is in original token order (MODEL.md §2.3, "direct" form).

    u[t] = b + sum_k w[k] * x[t + (K-1) - k], zeros beyond L-1: taps mirrored, looking ahead. Written as explicit
    shifted slices (no F.conv1d) so that the self-check also tests the conv1d call of `causal_conv`.
    x [L, E], w [E, 1, K], b [E] -> [L, E].
    """
    L, E = x.shape
    K = w.shape[-1]
    padded = torch.cat([x, x.new_zeros(K - 1, E)])   # [L + K - 1, E]
    out = b.expand(L, E).clone()
    for k in range(K):
        shift = K - 1 - k                             # tap k reads token t + shift
        out = out + w[:, 0, k] * padded[shift:shift + L]
    return out


# --------------------------------------------------------------------------------------------------------------
# One direction of the mixer (MODEL.md §2.3)
# --------------------------------------------------------------------------------------------------------------

def ssm_params(u: torch.Tensor, x_proj_w: torch.Tensor, dt_proj_w: torch.Tensor, dt_proj_b: torch.Tensor,
               N: int):
    """Input-dependent SSM parameters. u [L, E] -> delta [L, E], Bt [L, N], Ct [L, N].

    x_proj rows are split dt | B | C (R, N, N rows); dt_proj.bias is added inside the softplus.
    """
    R = dt_proj_w.shape[1]
    xd = u @ x_proj_w.T                               # [L, R + 2N]
    dtr, Bt, Ct = xd[:, :R], xd[:, R:R + N], xd[:, R + N:R + 2 * N]
    delta = softplus(dtr @ dt_proj_w.T + dt_proj_b)   # [L, E], > 0
    return delta, Bt, Ct


def direction_params(mp: Tensors, backward: bool) -> Tensors:
    """Pick one direction's parameters from a layer's mixer dict (keys without the 'layers.{i}.mixer.' prefix)."""
    return {role: mp[key] for role, key in direction_keys(backward).items()}


def causal_branch(x: torch.Tensor, p: Tensors, trace: Optional[Tensors] = None) -> torch.Tensor:
    """The forward-direction routine: causal conv, SiLU, SSM params, scan 0..L-1. x [L, E] -> y [L, E].

    The backward branch is this same routine run on flipped tokens with the `_b` parameters (flip formulation).
    """
    u = silu(causal_conv(x, p['conv_w'], p['conv_b']))          # conv bias before the SiLU
    delta, Bt, Ct = ssm_params(u, p['x_proj_w'], p['dt_proj_w'], p['dt_proj_b'], p['A_log'].shape[1])
    y = selective_scan(u, delta, -torch.exp(p['A_log']), Bt, Ct) + u * p['D']
    if trace is not None:
        trace.update(u=u, delta=delta, B=Bt, C=Ct, y=y)
    return y


def backward_branch_flip(x: torch.Tensor, p: Tensors, trace: Optional[Tensors] = None) -> torch.Tensor:
    """Backward branch as the source computes it: flip tokens, causal routine, flip back. [L, E] -> [L, E].

    Traced tensors are flipped back too, so every dump is in original token order.
    """
    inner: Optional[Tensors] = {} if trace is not None else None
    y = causal_branch(x.flip(0), p, inner).flip(0)
    if trace is not None:
        trace.update({k: v.flip(0) for k, v in inner.items()})
    return y


def backward_branch_direct(x: torch.Tensor, p: Tensors) -> torch.Tensor:
    """Backward branch without flips: anti-causal conv with mirrored taps, scan from L-1 down to 0 (MODEL.md §2.3)."""
    u = silu(anticausal_conv_direct(x, p['conv_w'], p['conv_b']))
    delta, Bt, Ct = ssm_params(u, p['x_proj_w'], p['dt_proj_w'], p['dt_proj_b'], p['A_log'].shape[1])
    return selective_scan(u, delta, -torch.exp(p['A_log']), Bt, Ct, reverse=True) + u * p['D']


def mixer(n: torch.Tensor, mp: Tensors, backward: str = 'flip', trace: Optional[Tensors] = None) -> torch.Tensor:
    """Bidirectional Mamba mixer, bimamba_type="v2" (MODEL.md §2.3). n [L, D] -> h [L, D].

    mp: the layer's mixer parameters without the 'layers.{i}.mixer.' prefix. backward: 'flip' | 'direct'.
    The source gates each branch by silu of its own (flipped) z; a flipped gate lands on the same original
    token, so gating once after the sum is the same thing (checked by `self_check`).
    """
    E = mp['in_proj.weight'].shape[0] // 2
    xz = n @ mp['in_proj.weight'].T                   # [L, 2E], no bias
    x, z = xz[:, :E], xz[:, E:]
    fwd_trace: Optional[Tensors] = {} if trace is not None else None
    bwd_trace: Optional[Tensors] = {} if trace is not None else None
    y_f = causal_branch(x, direction_params(mp, backward=False), fwd_trace)
    p_b = direction_params(mp, backward=True)
    if backward == 'flip':
        y_b = backward_branch_flip(x, p_b, bwd_trace)
    elif backward == 'direct':
        y_b = backward_branch_direct(x, p_b)
    else:
        raise ValueError(backward)
    y = (y_f + y_b) / 2 * silu(z)                     # /2: if_divide_out=True
    if trace is not None:
        trace.update({'x': x, 'z': z, 'y': y})
        trace.update({f'fwd.{k}': v for k, v in fwd_trace.items()})
        trace.update({f'bwd.{k}': v for k, v in bwd_trace.items()})
    return y @ mp['out_proj.weight'].T                # [L, D], no bias


# --------------------------------------------------------------------------------------------------------------
# Whole model (MODEL.md §2.1)
# --------------------------------------------------------------------------------------------------------------

def forward(sd: Tensors, img: torch.Tensor, stride: int, dtype: torch.dtype = torch.float64,
            dump_layers: Iterable[int] = (), trace_mixer_layer: Optional[int] = None,
            backward: str = 'flip'):
    """Vim classifier on one normalised image. img [C, H, W] -> (logits [classes], dumps).

    sd: official state dict (any float dtype; cast to `dtype`, so a float32 checkpoint run in float64 is exact).
    dumps (all in `dtype`, token order = model order, cls at row c):
      'patch_embed' [M, D]            conv output, tokens row-major over the grid
      'x_pos' [L, D]                  after cls insertion at c and the pos_embed add
      'layer{i}.resid_in' [L, D]      residual stream entering block i (what Block i returns as `residual`)
      'layer{i}.norm' [L, D]          RMSNorm_i(resid_in), the mixer input
      'layer{i}.h' [L, D]             mixer output of block i (what Block i returns as `hidden_states`)
      'layer{i}.mixer.*'              mixer internals of `trace_mixer_layer` (see `mixer`)
      'final.resid' [L, D]            resid_in of the last block + its h: the input of norm_f
      'final.norm_cls' [D]            norm_f output at row c, the head input
    for i in `dump_layers`.
    """
    p = {k: v.to(dtype) for k, v in sd.items()}
    x = img.to(dtype)
    dump_layers = set(dump_layers)
    dumps: Tensors = {}

    patches = F.conv2d(x[None], p['patch_embed.proj.weight'], p['patch_embed.proj.bias'], stride=stride)[0]
    D, G, _ = patches.shape                           # [D, G, G]
    M = G * G
    patches = patches.reshape(D, M).T                 # [M, D], m = gy * G + gx
    c = M // 2
    X = torch.cat([patches[:c], p['cls_token'].reshape(1, D), patches[c:]])   # [L, D]
    if X.shape[0] != p['pos_embed'].shape[1]:
        raise ValueError(f'{X.shape[0]} tokens but pos_embed has {p["pos_embed"].shape[1]} rows (wrong stride?)')
    X = X + p['pos_embed'][0]                         # row c of pos_embed belongs to the cls token
    dumps['patch_embed'], dumps['x_pos'] = patches, X

    depth = sum(1 for k in p if k.endswith('.norm.weight') and k.startswith('layers.'))
    resid, h = X, None
    for i in range(depth):
        if i > 0:
            resid = resid + h
        n = rms_norm(resid, p[f'layers.{i}.norm.weight'])
        prefix = f'layers.{i}.mixer.'
        mp = {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}
        trace: Optional[Tensors] = {} if i == trace_mixer_layer else None
        h = mixer(n, mp, backward=backward, trace=trace)
        if i in dump_layers:
            dumps.update({f'layer{i}.resid_in': resid, f'layer{i}.norm': n, f'layer{i}.h': h})
        if trace is not None:
            dumps.update({f'layer{i}.mixer.{k}': v for k, v in trace.items()})
    resid = resid + h                                 # norm_f's fused add
    f = rms_norm(resid, p['norm_f.weight'])[c]        # [D], cls row only
    logits = p['head.weight'] @ f + p['head.bias']
    dumps['final.resid'], dumps['final.norm_cls'] = resid, f
    return logits, dumps


# --------------------------------------------------------------------------------------------------------------
# Self-check: flip vs direct backward branch, and single gating vs the source's per-branch gating
# --------------------------------------------------------------------------------------------------------------

def _random_mixer_params(gen: torch.Generator, D: int, N: int, K: int, dtype) -> Tensors:
    """One layer's mixer parameters (keys without the 'layers.{i}.mixer.' prefix), random around their inits."""
    dims = VimConfig(img_size=1, in_chans=1, patch=1, stride=1, embed_dim=D, depth=1, num_classes=1, d_state=N,
                     d_conv=K)
    E, R = dims.inner, dims.dt_rank

    def rnd(*shape, std=1.0):
        return torch.randn(*shape, generator=gen, dtype=dtype) * std

    mp = {'in_proj.weight': rnd(2 * E, D, std=D ** -0.5), 'out_proj.weight': rnd(D, E, std=E ** -0.5)}
    for s in ('', '_b'):
        mp.update({
            f'conv1d{s}.weight': rnd(E, 1, K, std=K ** -0.5), f'conv1d{s}.bias': rnd(E, std=0.3),
            f'x_proj{s}.weight': rnd(R + 2 * N, E, std=E ** -0.5),
            f'dt_proj{s}.weight': rnd(E, R, std=R ** -0.5), f'dt_proj{s}.bias': rnd(E) - 3.0,
        })
    mp.update({'A_log': rnd(E, N, std=0.5) + 1.0, 'A_b_log': rnd(E, N, std=0.5) + 1.0,
               'D': 1 + rnd(E, std=0.3), 'D_b': 1 + rnd(E, std=0.3)})
    return mp


def _mixer_source_gating(n: torch.Tensor, mp: Tensors) -> torch.Tensor:
    """The source's arrangement: each direction gated by silu of its own z, the backward one on flipped xz."""
    E = mp['in_proj.weight'].shape[0] // 2
    xz = n @ mp['in_proj.weight'].T
    xz_flip = xz.flip(0)
    out_f = causal_branch(xz[:, :E], direction_params(mp, False)) * silu(xz[:, E:])
    out_b = causal_branch(xz_flip[:, :E], direction_params(mp, True)) * silu(xz_flip[:, E:])
    return (out_f + out_b.flip(0)) / 2 @ mp['out_proj.weight'].T


def self_check(seed: int = 0, tol: float = SELF_CHECK_TOL) -> Dict[str, float]:
    """Float64 agreement of the equivalent formulations on random inputs; raises AssertionError past `tol`.

    Returns the max abs differences (relative to the max abs value of the compared output):
      flip_vs_direct_branch   backward branch, flip formulation vs anti-causal conv + reverse scan
      flip_vs_direct_mixer    whole mixer with either backward branch
      gating_once_vs_source   gating after the sum vs the source's per-branch gating of flipped z
    """
    gen = torch.Generator().manual_seed(seed)
    results: Dict[str, float] = {}
    for L, D in ((1, 16), (2, 16), (13, 16), (50, 32)):   # L < K and L == 1 exercise the zero padding
        mp = _random_mixer_params(gen, D, N=16, K=4, dtype=torch.float64)
        n = torch.randn(L, D, generator=gen, dtype=torch.float64)
        x = torch.randn(L, 2 * D, generator=gen, dtype=torch.float64)
        p_b = direction_params(mp, backward=True)
        pairs = {
            'flip_vs_direct_branch': (backward_branch_flip(x, p_b), backward_branch_direct(x, p_b)),
            'flip_vs_direct_mixer': (mixer(n, mp, 'flip'), mixer(n, mp, 'direct')),
            'gating_once_vs_source': (mixer(n, mp, 'flip'), _mixer_source_gating(n, mp)),
        }
        for name, (a, b) in pairs.items():
            err = ((a - b).abs().max() / b.abs().max()).item()
            results[name] = max(results.get(name, 0.0), err)
    bad = {k: v for k, v in results.items() if not v <= tol}
    if bad:
        raise AssertionError(f'vim_reference self-check failed (tol {tol}): {bad}')
    return results

"""Shared by tools/export_onnx.py and tools/bench_torch.py: load an official Vim checkpoint into the training model
(training/vim_model.py, the repository's PyTorch nn.Module) and provide the selective scans used for ONNX export.

Shapes (spec glossary, /work/shared/spec/vim-architecture.md): C channels, H = W image side, P patch, S stride,
G grid side, M = G*G patches, L = M + 1 tokens, D embed dim, E = 2D inner dim, N state size, B batch.

Why the exported scan is one unrolled token loop for both directions ('joint', export_onnx.py's default):
ONNX has no selective-scan operator and none may be added (standard operators only), so the recurrence
h_t = exp(delta_t A) * h_{t-1} + delta_t B_t u_t is spelled with plain ops. Four spellings were exported and timed
with onnxruntime 1.30 on Vim-Tiny 224 (L = 197, 24 layers; batch 1, 1 thread, 2-core AMD EPYC VM, median ms):

  spelling   nodes    onnxruntime-node  onnxruntime-web (wasm)  how
  joint      14,757   287               746    both directions' [L, E, N] terms stacked along the channels (the
                                               backward ones in their scan order), split into L slices, one Mul +
                                               one Add per token, states concatenated, one MatMul with C
  unrolled   24,237   340               738    the same per direction: twice the nodes
  chunked    12,333   392               759    training/scan.py's exact chunked scan out of place (local scans of
                                               T ~ sqrt(L) tokens over all chunks at once, cumulative decays, a
                                               carry across chunks): fewer nodes, but the extra passes over
                                               state-sized tensors cost more than the per-node dispatch they save
  loop       ~8,000   3-4x slower on the 50-token model: a torch.jit.script loop exported as an ONNX Loop;
                      onnxruntime runs the body as a subgraph per iteration, with a setup cost per iteration far
                      above the two elementwise ops it contains (9,456 iterations for Vim-Tiny)

'joint' is the fastest on the native runtime, ties on wasm, and has half the nodes of 'unrolled', which halves
onnxruntime's session-creation (graph optimisation) time. All four give the same logits as the PyTorch model to
~1e-6 relative.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Dict, List, Optional

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, '..', 'training'))
sys.path.insert(0, _HERE)

import scan as scan_ops  # noqa: E402  (training/scan.py)
from vim_model import VimConfig, VisionMamba  # noqa: E402  (training/vim_model.py)


# --------------------------------------------------------------------------------------------------------------
# Checkpoint -> config -> model
# --------------------------------------------------------------------------------------------------------------

def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The official container {'model': state_dict, ...} (a bare state dict is accepted too), as float32."""
    obj = torch.load(path, map_location='cpu')
    sd = obj['model'] if isinstance(obj, dict) and 'model' in obj else obj
    return {k: v.float() for k, v in sd.items()}


def config_from_state_dict(sd: Dict[str, torch.Tensor], image_size: Optional[int] = None,
                           stride: Optional[int] = None) -> VimConfig:
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
    return VimConfig(img_size=image_size, in_chans=C, patch=P, stride=stride, num_classes=sd['head.weight'].shape[0],
                     embed_dim=D, depth=depth, d_state=N, d_conv=K, expand=E // D)


def build_model(sd: Dict[str, torch.Tensor], cfg: VimConfig) -> VisionMamba:
    """training/vim_model.py's VisionMamba with the checkpoint loaded (strict: the official keys and shapes)."""
    model = VisionMamba(cfg)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def bench_input(cfg: VimConfig) -> torch.Tensor:
    """[1, C, H, W] float32: x_i = 2 sin(12.9898 i) in float64, rounded to float32; the synthetic input of
    `vimedge bench` (src/cli/bench.ts), so every row of the speed table runs the same image."""
    n = cfg.in_chans * cfg.img_size * cfg.img_size
    x = torch.sin(torch.arange(n, dtype=torch.float64) * 12.9898) * 2
    return x.float().reshape(1, cfg.in_chans, cfg.img_size, cfg.img_size)


# --------------------------------------------------------------------------------------------------------------
# Export-friendly scans: signature of training/scan.py, fn(u, delta, A, Bm, Cm, reverse) -> y
#   u, delta [B, L, E];  A [E, N];  Bm, Cm [B, L, N];  y [B, L, E] (without the D skip, which the model adds)
# --------------------------------------------------------------------------------------------------------------

def scan_unrolled(u, delta, A, Bm, Cm, reverse: bool = False):
    """Token loop that tracing unrolls: per token one Mul and one Add on [B, 1, E, N] slices."""
    L = int(u.shape[1])
    dA = torch.exp(delta.unsqueeze(-1) * A)                        # [B, L, E, N]
    dBu = (delta * u).unsqueeze(-1) * Bm.unsqueeze(2)              # [B, L, E, N]
    a, b = dA.split(1, dim=1), dBu.split(1, dim=1)
    hs: List[Optional[torch.Tensor]] = [None] * L
    h = None
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        h = b[t] if h is None else a[t] * h + b[t]                  # h starts at 0 before the first token
        hs[t] = h
    H = torch.cat(hs, dim=1)                                       # [B, L, E, N], token order
    return torch.matmul(H, Cm.unsqueeze(-1)).squeeze(-1)          # y_t = h_t . C_t


def default_chunk(L: int) -> int:
    return max(1, round(math.sqrt(L)))


def scan_chunked(u, delta, A, Bm, Cm, reverse: bool = False, chunk: Optional[int] = None):
    """training/scan.py's exact chunked scan, written out of place; the reverse scan runs on flipped tokens.
    The tail is padded with decay 1 and input 0, so padded tokens never feed a real one."""
    if reverse:
        f = lambda x: x.flip(1)                                     # noqa: E731
        return f(scan_chunked(f(u), f(delta), A, f(Bm), f(Cm), False, chunk))
    Bsz, L, E = u.shape
    Bsz, L, E, N = int(Bsz), int(L), int(E), int(A.shape[1])
    T = chunk or default_chunk(L)
    nC = -(-L // T)
    pad = nC * T - L
    a = torch.exp(delta.unsqueeze(-1) * A)
    b = (delta * u).unsqueeze(-1) * Bm.unsqueeze(2)
    if pad:                                                         # ONNX Pad nodes, no constant tensors
        a = torch.nn.functional.pad(a, (0, 0, 0, 0, 0, pad), value=1.0)
        b = torch.nn.functional.pad(b, (0, 0, 0, 0, 0, pad), value=0.0)
    a = a.reshape(Bsz, nC, T, E, N)
    b = b.reshape(Bsz, nC, T, E, N)
    at, bt = a.split(1, dim=2), b.split(1, dim=2)
    h, P = [bt[0]], [at[0]]
    for t in range(1, T):                                           # 1. zero-carry states inside every chunk
        h.append(at[t] * h[-1] + bt[t])
        P.append(at[t] * P[-1])                                     # 2. cumulative decay inside the chunk
    hl, Pc = torch.cat(h, dim=2), torch.cat(P, dim=2)               # [B, nC, T, E, N]
    h_last, P_last = h[-1].split(1, dim=1), P[-1].split(1, dim=1)   # nC x [B, 1, 1, E, N]
    carries = [torch.zeros_like(h_last[0])]
    for k in range(1, nC):                                          # 3. state entering chunk k
        carries.append(h_last[0] if k == 1 else P_last[k - 1] * carries[-1] + h_last[k - 1])
    H = hl + Pc * torch.cat(carries, dim=1)                         # 4. decayed carry-in everywhere
    H = H.reshape(Bsz, nC * T, E, N)[:, :L]
    return torch.matmul(H, Cm.unsqueeze(-1)).squeeze(-1)


@torch.jit.script
def _scan_loop_script(dA: torch.Tensor, dBu: torch.Tensor, reverse: bool) -> torch.Tensor:
    L = dA.size(1)
    h = torch.zeros_like(dA[:, 0])
    hs = torch.zeros_like(dA)
    for i in range(L):
        t = L - 1 - i if reverse else i
        h = dA[:, t] * h + dBu[:, t]
        hs[:, t] = h
    return hs


def scan_loop(u, delta, A, Bm, Cm, reverse: bool = False):
    """Scripted loop: the exporter turns it into an ONNX Loop node."""
    dA = torch.exp(delta.unsqueeze(-1) * A)
    dBu = (delta * u).unsqueeze(-1) * Bm.unsqueeze(2)
    H = _scan_loop_script(dA, dBu, bool(reverse))
    return torch.matmul(H, Cm.unsqueeze(-1)).squeeze(-1)


EXPORT_SCANS = {'unrolled': scan_unrolled, 'chunked': scan_chunked, 'loop': scan_loop}


def _joint_mixer_forward(self, n):
    """training/vim_model.py Mixer.forward with the two directions scanned together: the backward direction's
    inputs are flipped to scan order and stacked with the forward ones along the channels ([B, L, 2E, N]), so one
    unrolled loop of L steps (2L nodes) serves both directions instead of two loops (4L nodes). The per-direction
    B, C, A and D stay separate (a [2, ...] axis), so this is the same arithmetic as the model's."""
    R, N, E = self.R, self.N, self.E
    x, z = self.in_proj(n).chunk(2, dim=-1)
    u_f, u_b = self.conv_both(x)
    Bsz, L = int(u_f.shape[0]), int(u_f.shape[1])

    def ssm_inputs(u, x_proj, dt_proj):
        dtr, Bm, Cm = torch.split(x_proj(u), [R, N, N], dim=-1)
        delta = torch.nn.functional.softplus(torch.nn.functional.linear(dtr, dt_proj.weight) + dt_proj.bias)
        return delta, Bm, Cm

    u_b = u_b.flip(1)                                               # backward direction in its scan order
    d_f, B_f, C_f = ssm_inputs(u_f, self.x_proj, self.dt_proj)
    d_b, B_b, C_b = ssm_inputs(u_b, self.x_proj_b, self.dt_proj_b)
    u = torch.cat([u_f, u_b], dim=-1)                               # [B, L, 2E]
    delta = torch.cat([d_f, d_b], dim=-1)
    A = -torch.exp(torch.cat([self.A_log, self.A_b_log], dim=0))    # [2E, N]
    Bm = torch.stack([B_f, B_b], dim=2).unsqueeze(3)                # [B, L, 2, 1, N]
    Cm = torch.stack([C_f, C_b], dim=2).unsqueeze(-1)               # [B, L, 2, N, 1]
    a = torch.exp(delta.unsqueeze(-1) * A)                          # [B, L, 2E, N]
    b = ((delta * u).reshape(Bsz, L, 2, E, 1) * Bm).reshape(Bsz, L, 2 * E, N)
    at, bt = a.split(1, dim=1), b.split(1, dim=1)
    h, hs = None, []
    for t in range(L):
        h = bt[t] if h is None else at[t] * h + bt[t]
        hs.append(h)
    H = torch.cat(hs, dim=1).reshape(Bsz, L, 2, E, N)
    y = torch.matmul(H, Cm).reshape(Bsz, L, 2, E) + u.reshape(Bsz, L, 2, E) * torch.stack([self.D, self.D_b])
    y_f, y_b = y[:, :, 0], y[:, :, 1].flip(1)                       # backward result back in token order
    return self.out_proj((y_f + y_b) * (0.5 * torch.nn.functional.silu(z)))


EXPORT_CHOICES = ('joint',) + tuple(EXPORT_SCANS)


def use_export_scan(model: VisionMamba, name: str) -> None:
    """Make the model's mixers use one of EXPORT_CHOICES."""
    if name == 'joint':
        import types
        for layer in model.layers:
            layer.mixer.forward = types.MethodType(_joint_mixer_forward, layer.mixer)
        return
    key = f'export-{name}'
    scan_ops.SCANS[key] = EXPORT_SCANS[name]                        # vim_model reads this dict at call time
    model.set_scan(key)


def use_eager_scan(model: VisionMamba) -> None:
    """The model's own CPU path (training/scan.py 'chunked': without gradients, a token-by-token in-place loop)."""
    for layer in model.layers:
        layer.mixer.__dict__.pop('forward', None)                   # undo 'joint'
    model.set_scan('chunked')


def describe(cfg: VimConfig, model: VisionMamba) -> dict:
    return {'img_size': cfg.img_size, 'in_chans': cfg.in_chans, 'patch': cfg.patch, 'stride': cfg.stride,
            'embed_dim': cfg.embed_dim, 'depth': cfg.depth, 'num_classes': cfg.num_classes, 'tokens': cfg.tokens,
            'params': sum(p.numel() for p in model.parameters())}

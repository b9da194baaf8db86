"""The selective scan (the SSM recurrence of the Mamba mixer, MODEL.md §2.3 (c)), written once, as a plain token loop.

This is the reference every faster spelling is checked against: training/scan.py's chunked scan and its fused
Triton kernel (training/test_scan.py), and the ONNX export's joint scan of both directions (training/vim_model.py).
It works in any float dtype (float64 is the "truth") and keeps autograd.

For one image and one direction, with the state h [E, N] = 0 before the first token of the scan order
(0..L-1, or L-1..0 if reverse):
    h_t = exp(delta_t ⊗ A) ⊙ h_{t-1} + (delta_t * u_t) ⊗ B_t     (ZOH for A, Euler for B, as mamba_ssm's
    y_t = h_t · C_t                                               selective_scan_ref; the sum is over N)
The D skip (y + D * u) is not part of the scan: the mixer adds it.
"""
from __future__ import annotations

import torch


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, Bt: torch.Tensor, Ct: torch.Tensor,
                   reverse: bool = False) -> torch.Tensor:
    """u, delta [..., L, E]; A [E, N] (negative); Bt, Ct [..., L, N] (shared by all E channels) -> y [..., L, E].

    Leading (batch) dims are looped over, so every image runs exactly the per-image arithmetic below: one
    reference, whatever the batch.
    """
    if u.dim() > 2:
        return torch.stack([selective_scan(u_i, delta_i, A, B_i, C_i, reverse)
                            for u_i, delta_i, B_i, C_i in zip(u, delta, Bt, Ct)])
    L, E = u.shape
    dA = torch.exp(delta[:, :, None] * A)             # [L, E, N], in (0, 1]
    dBu = (delta * u)[:, :, None] * Bt[:, None, :]    # [L, E, N]
    h = u.new_zeros(E, A.shape[1])
    ys = [None] * L                                   # y_t in token order, whichever way the scan runs
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        h = dA[t] * h + dBu[t]
        ys[t] = h @ Ct[t]                             # [E]
    return torch.stack(ys)

"""The fast selective scans that training needs, each checked against the reference loop
(tools/vim_reference/scan.py, `selective_scan`) by training/test_scan.py.

Glossary: tools/vim_reference/__init__.py, plus  T  chunk length of the chunked scan,  nC = ceil(L / T) chunks.
In code the batch size is `Bsz`, so that `B` / `Bm` can name the input matrix of the SSM, as in the papers.
The recurrence, for one image and one direction, with h[E, N] = 0 before the first token of the scan order:

    h_t = exp(delta_t ⊗ A) ⊙ h_{t-1} + (delta_t * u_t) ⊗ B_t            a_t := exp(delta_t ⊗ A), b_t := ...
    y_t = h_t · C_t     (sum over N)

Shapes: u, delta, y [Bsz, L, E];  A [E, N] (negative);  Bm, Cm [Bsz, L, N].  The D skip (y + D * u) is not part
of these functions: the model adds it, autograd handles it.

* `selective_scan_chunked`  exact chunked scan, pure PyTorch, custom autograd (forward and backward written out),
                            so autograd keeps only the [Bsz, L, E] / [Bsz, L, N] inputs and no [Bsz, L, E, N] state.
                            Runs anywhere (CPU tests, CPU evaluation, GPU fallback). When no input needs a gradient
                            (evaluation) it streams token by token with only the [Bsz, E, N] state (`_scan_stream`).
                            Same signature as the reference: fn(u, delta, A, Bm, Cm, reverse) -> y.

and, for the GPU, fused Triton kernels (second half of this file; optional): `ssm_scan_triton` (softplus(dt +
bias), the scan with its state in registers, D skip; its backward runs the adjoint recurrence), `conv_silu_triton`
(both depthwise convs + SiLU) and `gate_triton`. The model uses all three when its scan is 'triton'. They are
checked against the PyTorch path at start-up (`triton_self_test`); callers fall back to 'chunked' if that fails.

Why a custom autograd for the chunked scan: with autograd over plain ops each of the 48 scans of a forward keeps
several [Bsz, L, E, N] fp32 tensors (B=512: 629 MB each), i.e. ~90 GB per step. The custom function keeps the inputs
(~4 * 39 MB) and rebuilds the states in backward; its transient peak is 3 state-sized buffers.

Chunked scan (exact: the same recurrence, only regrouped):
  1. inside every chunk at once, run the recurrence from a zero state: T steps over [Bsz, nC, E, N] slices;
  2. P_t = prod of a over the chunk up to t (values in (0, 1]: no overflow, unlike exp(-cumsum) tricks);
  3. carry the chunk-final states across chunks: s_k = P_last[k-1] * s_{k-1} + h_last[k-1]   (nC steps, small);
  4. h_t += P_t * s_k for every position of chunk k.
With T >= L it degenerates to the plain in-place sequential loop (steps 2-4 vanish), which moves the fewest bytes
(each step is one fused multiply-add over a [Bsz, E, N] slice); at small batch or on CPU, chunks cut the number of
kernel launches from L to T + nC. `default_chunk` picks T.

Gradients (g_t := dLoss/dh_t, accumulated over the future):
    g_t = C_t ⊗ dy_t + a_{t+1} ⊙ g_{t+1}         (the same recurrence, run in the opposite direction)
    dC_t[n]     = sum_e dy_t[e] h_t[e, n]
    w_t         = a_t ⊙ h_{t-1}        (the decayed previous state; dLoss/da_t = g_t ⊙ h_{t-1})
    ddelta_t[e] = sum_n A[e,n] g_t[e,n] w_t[e,n]  +  u_t[e] sum_n g_t[e,n] B_t[n]
    du_t[e]     = delta_t[e] sum_n g_t[e,n] B_t[n]
    dB_t[n]     = sum_e g_t[e,n] delta_t[e] u_t[e]
    dA[e,n]     = sum_{b,t} delta_t[e] g_t[e,n] w_t[e,n]
"""
from __future__ import annotations

import math
import os
from typing import Optional

import torch


def _no_autocast(device_type: str):
    """The scan is fp32 by design (MODEL.md §5): make sure no surrounding autocast turns its einsums into bf16."""
    return torch.autocast(device_type=device_type if device_type in ('cuda', 'cpu') else 'cpu', enabled=False)


# ----------------------------------------------------------------------------------------------------------------
# Chunked scan (pure PyTorch, custom autograd)
# ----------------------------------------------------------------------------------------------------------------

def default_chunk(L: int, device: torch.device) -> int:
    """Chunk length T. GPU at training batch sizes is memory-bound: T = L (plain in-place loop, fewest bytes).
    CPU: chunks near sqrt(L) that divide L (no padding), fewer Python-level steps. VIM_SCAN_CHUNK overrides."""
    env = os.environ.get('VIM_SCAN_CHUNK')
    if env:
        return max(1, int(env))
    if device.type == 'cuda':
        return L
    best = L
    for T in range(1, L + 1):
        if L % T == 0 and abs(T - math.sqrt(L)) < abs(best - math.sqrt(L)):
            best = T
    return best


def _scan_inplace(a: torch.Tensor, h: torch.Tensor, T: int, reverse: bool) -> None:
    """In place: h_t <- a_t * h_{t±1} + h_t along dim 1 (forward: uses h_{t-1}; reverse: h_{t+1}).

    a, h: [Bsz, L, E, N], contiguous, same length. On return h holds the states; `a` is overwritten (it holds the
    cumulative decays of the chunks). For `reverse`, a_t is the decay that multiplies h_{t+1} when producing h_t.
    """
    Bsz, L = h.shape[:2]
    rest = h.shape[2:]
    if T >= L:                                            # plain sequential loop, one fused op per step
        steps = range(L - 2, -1, -1) if reverse else range(1, L)
        for t in steps:
            prev = t + 1 if reverse else t - 1
            h[:, t].addcmul_(a[:, t], h[:, prev])
        return
    nC = -(-L // T)
    pad = nC * T - L
    if pad:
        # Ragged tail: pad with a = 1, h = 0 on the side where the scan ends, so the padded positions never
        # feed a real one. Costs one copy of both tensors; avoided when T divides L (default_chunk does that).
        def padded(x, value):
            filler = x.new_full((Bsz, pad) + tuple(rest), value)
            return torch.cat([filler, x] if reverse else [x, filler], dim=1)
        ap, hp = padded(a, 1.0), padded(h, 0.0)
        _scan_inplace(ap, hp, T, reverse)
        h.copy_(hp[:, pad:] if reverse else hp[:, :L])
        return
    av = a.view(Bsz, nC, T, *rest)
    hv = h.view(Bsz, nC, T, *rest)
    inner = range(T - 2, -1, -1) if reverse else range(1, T)
    for t in inner:                                       # 1. local states, zero carry-in, all chunks at once
        prev = t + 1 if reverse else t - 1
        hv[:, :, t].addcmul_(av[:, :, t], hv[:, :, prev])
    for t in inner:                                       # 2. cumulative decay inside the chunk
        prev = t + 1 if reverse else t - 1
        av[:, :, t].mul_(av[:, :, prev])
    # 3. state entering each chunk (s_k), from the chunk's neighbour on the side the scan comes from.
    carry = h.new_zeros((Bsz, nC) + tuple(rest))
    last = 0 if reverse else T - 1                        # position where the scan leaves a chunk
    chunks = range(nC - 2, -1, -1) if reverse else range(1, nC)
    for k in chunks:
        src = k + 1 if reverse else k - 1
        torch.addcmul(hv[:, src, last], av[:, src, last], carry[:, src], out=carry[:, k])
    hv.addcmul_(av, carry[:, :, None])                    # 4. add the decayed carry-in everywhere


def _states(u, delta, A, Bm, T, reverse, out_a: Optional[torch.Tensor] = None):
    """States h [Bsz, L, E, N] of the recurrence (allocates h; `out_a` is scratch for the decays)."""
    a = torch.mul(delta[..., None], A, out=out_a) if out_a is not None else delta[..., None] * A
    a.exp_()
    h = (delta * u)[..., None] * Bm[:, :, None, :]
    _scan_inplace(a, h, T, reverse)
    return h, a


def _scan_stream(u, delta, A, Bm, Cm, reverse: bool) -> torch.Tensor:
    """Forward only (no gradient wanted): one token at a time with just the [Bsz, E, N] state, never the
    [Bsz, L, E, N] tensors. The reference's arithmetic, in place, batched. At evaluation batch sizes the
    state stays in cache on a CPU (batch 64: 1.5 MB), so this is the fastest exact path there, and on a GPU it
    moves about as many bytes as the chunked scan."""
    Bsz, L, E = u.shape
    h = u.new_zeros(Bsz, E, A.shape[1])
    a = torch.empty_like(h)
    du = delta * u
    ys = [None] * L
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        torch.mul(delta[:, t, :, None], A, out=a).exp_()
        h.mul_(a).addcmul_(du[:, t, :, None], Bm[:, t, None, :])
        ys[t] = torch.bmm(h, Cm[:, t, :, None])[..., 0]
    return torch.stack(ys, dim=1)


class _ChunkedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, Bm, Cm, reverse: bool, T: int):
        with _no_autocast(u.device.type):
            if not any(ctx.needs_input_grad[:5]):
                return _scan_stream(u, delta, A, Bm, Cm, reverse)
            h, _ = _states(u, delta, A, Bm, T, reverse)
            y = torch.einsum('blen,bln->ble', h, Cm)
        ctx.save_for_backward(u, delta, A, Bm, Cm)
        ctx.reverse, ctx.T = reverse, T
        return y

    @staticmethod
    def backward(ctx, dy):
        u, delta, A, Bm, Cm = ctx.saved_tensors
        reverse, T = ctx.reverse, ctx.T
        with _no_autocast(u.device.type):
            dy = dy.to(u.dtype).contiguous()
            # Forward states again (buffer 1 = h, buffer 2 = scratch for the decays).
            h, buf = _states(u, delta, A, Bm, T, reverse)
            dC = torch.einsum('blen,ble->bln', h, dy)
            # w_t = a_t * h_{t-1} (previous in scan order), built in `buf`.
            torch.mul(delta[..., None], A, out=buf).exp_()
            if reverse:
                buf[:, :-1].mul_(h[:, 1:])
                buf[:, -1].zero_()
            else:
                buf[:, 1:].mul_(h[:, :-1])
                buf[:, 0].zero_()
            w = buf
            # g: adjoint recurrence, direct term C_t ⊗ dy_t, decay of the *next* token in scan order.
            g = torch.mul(dy[..., None], Cm[:, :, None, :], out=h)          # reuses h's memory
            delta_next = torch.zeros_like(delta)
            if reverse:                                  # next in scan order = t - 1
                delta_next[:, 1:] = delta[:, :-1]
            else:
                delta_next[:, :-1] = delta[:, 1:]
            a_next = (delta_next[..., None] * A).exp_()  # buffer 3; exp(0) = 1 where there is no next token
            _scan_inplace(a_next, g, T, not reverse)
            del a_next
            gB = torch.einsum('blen,bln->ble', g, Bm)
            du = delta * gB
            dB = torch.einsum('blen,ble->bln', g, delta * u)
            gw = w.mul_(g)                               # g_t * w_t, in place over w
            ddelta = torch.einsum('blen,en->ble', gw, A) + u * gB
            dA = torch.einsum('blen,ble->en', gw, delta)
        return du, ddelta, dA, dB, dC, None, None


def selective_scan_chunked(u, delta, A, Bm, Cm, reverse: bool = False, chunk: Optional[int] = None) -> torch.Tensor:
    """Exact chunked scan with a hand-written backward. Inputs as the reference `selective_scan`; any float dtype."""
    u, delta, Bm, Cm = (x.contiguous() for x in (u, delta, Bm, Cm))
    T = chunk if chunk else default_chunk(u.shape[1], u.device)
    return _ChunkedScan.apply(u, delta, A.contiguous(), Bm, Cm, bool(reverse), int(T))


# ----------------------------------------------------------------------------------------------------------------
# Fused Triton kernels (optional; GPU only). Three ops, each an autograd.Function with a hand-written backward:
#   conv_silu_triton   both depthwise convs + SiLU          x (view of in_proj output) -> u_f, u_b
#   ssm_scan_triton    softplus(dt + bias), scan, D skip     u, dt, ... -> y
#   gate_triton        ((y_f + y_b) / 2) * silu(z)           -> out_proj input
# The PyTorch path of the model (chunked scan, F.conv1d, plain ops) is the reference: `triton_self_test` compares
# a whole mixer (values and every gradient) between the two at start-up, and callers fall back if it fails.
# Why fused: a profile of the unfused model at batch 512 on the H100 spent ~27% of the GPU time in the scan's
# backward, ~17% in dtype/layout copies, ~13% in the depthwise conv and most of the rest in small elementwise ops
# over [Bsz, L, E] tensors; fusing removes most of those passes over memory and most kernel launches.
# ----------------------------------------------------------------------------------------------------------------

try:  # Triton is absent on the CPU development machines (Debian's torch 1.13); that is fine.
    import triton
    import triton.language as tl
    HAVE_TRITON = True
except Exception:  # pragma: no cover - depends on the machine
    HAVE_TRITON = False

# (channels per program, warps) of each kernel; the bench can change them before the first launch.
TRITON_CFG = {
    'scan_fwd': (int(os.environ.get('VIM_SCAN_FWD_BLOCK', '32')), int(os.environ.get('VIM_SCAN_FWD_WARPS', '2'))),
    'scan_bwd': (int(os.environ.get('VIM_SCAN_BWD_BLOCK', '32')), int(os.environ.get('VIM_SCAN_BWD_WARPS', '2'))),
    'conv': (32, 4),
    'gate': (1024, 4),
    'store_states': (int(os.environ.get('VIM_SCAN_STORE_STATES', '1')), 0),   # 1: forward keeps the states
}

if HAVE_TRITON:
    @triton.jit
    def _softplus(v):
        """softplus with F.softplus's threshold 20; log1p(e) via log(1+e) * e / ((1+e) - 1), exact to ~1 ulp."""
        e = tl.exp(tl.minimum(v, 20.0))
        w = 1.0 + e
        lp = tl.where(w == 1.0, e, tl.log(w) * e / (w - 1.0))
        return tl.where(v > 20.0, v, lp)

    @triton.jit
    def _scan_fwd_kernel(u_ptr, dt_ptr, bias_ptr, A_ptr, B_ptr, C_ptr, D_ptr, y_ptr, hs_ptr,
                         L, E, s_ub, s_ut, s_db, s_dt, s_bb, s_bt, s_cb, s_ct, s_hb, s_ht,
                         N: tl.constexpr, BLOCK_E: tl.constexpr, REVERSE: tl.constexpr,
                         STORE_STATES: tl.constexpr):
        """One program = one image x BLOCK_E channels x all N states; h[BLOCK_E, N] stays in registers.
        u, y [Bsz, L, E] (strides s_ub, s_ut, 1); dt [Bsz, L, E] (s_db, s_dt, 1); B, C [Bsz, L, N] (any row
        strides: they are column slices of x_proj's output); bias, D [E]; A [E, N]. With STORE_STATES the states
        go to hs [Bsz, L, E, N] (strides s_hb, s_ht, N, 1) for the backward (training)."""
        pid_b = tl.program_id(0).to(tl.int64)
        offs_e = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
        offs_n = tl.arange(0, N)
        mask_e = offs_e < E
        en_off = offs_e[:, None] * N + offs_n[None, :]
        hb = hs_ptr + pid_b * s_hb
        A = tl.load(A_ptr + en_off, mask=mask_e[:, None], other=0.0)
        bias = tl.load(bias_ptr + offs_e, mask=mask_e, other=0.0).to(tl.float32)
        Dv = tl.load(D_ptr + offs_e, mask=mask_e, other=0.0).to(tl.float32)
        h = tl.zeros([BLOCK_E, N], dtype=tl.float32)
        ub = u_ptr + pid_b * s_ub
        yb = y_ptr + pid_b * s_ub
        db = dt_ptr + pid_b * s_db
        bb = B_ptr + pid_b * s_bb
        cb = C_ptr + pid_b * s_cb
        for i in range(L):
            t = i + REVERSE * (L - 1 - 2 * i)             # scan position i -> token t
            d = _softplus(tl.load(db + t * s_dt + offs_e, mask=mask_e, other=0.0).to(tl.float32) + bias)
            x = tl.load(ub + t * s_ut + offs_e, mask=mask_e, other=0.0).to(tl.float32)
            bt = tl.load(bb + t * s_bt + offs_n).to(tl.float32)
            ct = tl.load(cb + t * s_ct + offs_n).to(tl.float32)
            h = tl.exp(d[:, None] * A) * h + (d * x)[:, None] * bt[None, :]
            tl.store(yb + t * s_ut + offs_e, tl.sum(h * ct[None, :], axis=1) + Dv * x, mask=mask_e)
            if STORE_STATES:
                tl.store(hb + t * s_ht + en_off, h, mask=mask_e[:, None])

    @triton.jit
    def _scan_bwd_kernel(u_ptr, dt_ptr, bias_ptr, A_ptr, B_ptr, C_ptr, D_ptr, dy_ptr, hs_ptr,
                         du_ptr, ddt_ptr, dA_ptr, dB_ptr, dC_ptr, dbias_ptr, dD_ptr,
                         L, E, s_ub, s_ut, s_db, s_dt, s_bb, s_bt, s_cb, s_ct, s_hb, s_ht, s_pb, s_pe, s_pt,
                         N: tl.constexpr, BLOCK_E: tl.constexpr, REVERSE: tl.constexpr,
                         RECOMPUTE: tl.constexpr):
        """Phase 1 (RECOMPUTE only: when the forward did not store them) recomputes the states into hs
        [Bsz, L, E, N] (this program's slice only); phase 2 walks the scan order backwards with g = dLoss/dh in
        registers. du, dy share u's strides; ddt shares dt's. Sums over the
        channel block go to dB/dC partials [Bsz, nEB, L, N] (strides s_pb, s_pe, s_pt); sums over tokens to the
        dA [Bsz, E, N], dbias and dD [Bsz, E] partials; the host adds the partials (deterministic, no atomics)."""
        pid_b = tl.program_id(0).to(tl.int64)
        pid_e = tl.program_id(1)
        offs_e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
        offs_n = tl.arange(0, N)
        mask_e = offs_e < E
        mask_en = mask_e[:, None]
        en_off = offs_e[:, None] * N + offs_n[None, :]
        A = tl.load(A_ptr + en_off, mask=mask_en, other=0.0)
        bias = tl.load(bias_ptr + offs_e, mask=mask_e, other=0.0).to(tl.float32)
        Dv = tl.load(D_ptr + offs_e, mask=mask_e, other=0.0).to(tl.float32)
        ub = u_ptr + pid_b * s_ub
        gyb = dy_ptr + pid_b * s_ub
        dub = du_ptr + pid_b * s_ub
        db = dt_ptr + pid_b * s_db
        ddb = ddt_ptr + pid_b * s_db
        bb = B_ptr + pid_b * s_bb
        cb = C_ptr + pid_b * s_cb
        hb = hs_ptr + pid_b * s_hb
        pb = pid_b * s_pb + pid_e * s_pe
        if RECOMPUTE:
            # Phase 1: states.
            h = tl.zeros([BLOCK_E, N], dtype=tl.float32)
            for i in range(L):
                t = i + REVERSE * (L - 1 - 2 * i)
                d = _softplus(tl.load(db + t * s_dt + offs_e, mask=mask_e, other=0.0).to(tl.float32) + bias)
                x = tl.load(ub + t * s_ut + offs_e, mask=mask_e, other=0.0).to(tl.float32)
                bt = tl.load(bb + t * s_bt + offs_n).to(tl.float32)
                h = tl.exp(d[:, None] * A) * h + (d * x)[:, None] * bt[None, :]
                tl.store(hb + t * s_ht + en_off, h, mask=mask_en)
            tl.debug_barrier()   # phase 2 may read states another thread of this program wrote
        # Phase 2: adjoint, scan positions i = L-1 .. 0.
        g = tl.zeros([BLOCK_E, N], dtype=tl.float32)
        dA_acc = tl.zeros([BLOCK_E, N], dtype=tl.float32)
        dbias_acc = tl.zeros([BLOCK_E], dtype=tl.float32)
        dD_acc = tl.zeros([BLOCK_E], dtype=tl.float32)
        t_last = (L - 1) * (1 - REVERSE)
        h_t = tl.load(hb + t_last * s_ht + en_off, mask=mask_en, other=0.0)
        for j in range(L):
            i = L - 1 - j
            t = i + REVERSE * (L - 1 - 2 * i)
            t_prev = t - 1 + 2 * REVERSE                  # previous token in scan order (valid when i > 0)
            v = tl.load(db + t * s_dt + offs_e, mask=mask_e, other=0.0).to(tl.float32) + bias
            d = _softplus(v)
            ev = tl.exp(tl.minimum(v, 20.0))
            dsoft = tl.where(v > 20.0, 1.0, ev / (ev + 1.0))   # softplus' = sigmoid (1 above the threshold)
            x = tl.load(ub + t * s_ut + offs_e, mask=mask_e, other=0.0).to(tl.float32)
            gy = tl.load(gyb + t * s_ut + offs_e, mask=mask_e, other=0.0)
            bt = tl.load(bb + t * s_bt + offs_n).to(tl.float32)
            ct = tl.load(cb + t * s_ct + offs_n).to(tl.float32)
            h_prev = tl.load(hb + t_prev * s_ht + en_off, mask=mask_en & (i > 0), other=0.0)
            a = tl.exp(d[:, None] * A)
            g = g + gy[:, None] * ct[None, :]             # dLoss/dh_t (future part already decayed in)
            tl.store(dC_ptr + pb + t * s_pt + offs_n, tl.sum(gy[:, None] * h_t, axis=0))
            gw = g * a * h_prev                           # g_t ⊙ a_t ⊙ h_{t-1}
            dA_acc += gw * d[:, None]
            gB = tl.sum(g * bt[None, :], axis=1)          # [BLOCK_E]
            ddt = (tl.sum(gw * A, axis=1) + x * gB) * dsoft
            tl.store(ddb + t * s_dt + offs_e, ddt.to(ddt_ptr.dtype.element_ty), mask=mask_e)
            tl.store(dub + t * s_ut + offs_e, d * gB + Dv * gy, mask=mask_e)
            tl.store(dB_ptr + pb + t * s_pt + offs_n, tl.sum(g * (d * x)[:, None], axis=0))
            dbias_acc += ddt
            dD_acc += gy * x
            g = g * a
            h_t = h_prev
        tl.store(dA_ptr + pid_b * E * N + en_off, dA_acc, mask=mask_en)
        tl.store(dbias_ptr + pid_b * E + offs_e, dbias_acc, mask=mask_e)
        tl.store(dD_ptr + pid_b * E + offs_e, dD_acc, mask=mask_e)

    class _TritonScan(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u, dt, bias, A, Bm, Cm, D, reverse: bool):
            Bsz, L, E = u.shape
            N = A.shape[1]
            blk, warps = TRITON_CFG['scan_fwd']
            y = torch.empty_like(u)
            # Training: keep the states for the backward (skips its recompute phase, which is latency-bound:
            # ~1/3 of its time) at the cost of [Bsz, L, E, N] fp32 per scan (B=256: 315 MB, 48 scans: 15 GB).
            store = bool(TRITON_CFG['store_states'][0]) and any(ctx.needs_input_grad[:7])
            hs = torch.empty(Bsz, L, E, N, device=u.device, dtype=torch.float32) if store else y
            _scan_fwd_kernel[(Bsz, triton.cdiv(E, blk))](
                u, dt, bias, A, Bm, Cm, D, y, hs, L, E, u.stride(0), u.stride(1), dt.stride(0), dt.stride(1),
                Bm.stride(0), Bm.stride(1), Cm.stride(0), Cm.stride(1), hs.stride(0), hs.stride(1) if store else 0,
                N=N, BLOCK_E=blk, REVERSE=int(reverse), STORE_STATES=int(store), num_warps=warps)
            if store:
                ctx.save_for_backward(u, dt, bias, A, Bm, Cm, D, hs)
            else:
                ctx.save_for_backward(u, dt, bias, A, Bm, Cm, D)
            ctx.reverse, ctx.stored = reverse, store
            return y

        @staticmethod
        def backward(ctx, dy):
            u, dt, bias, A, Bm, Cm, D = ctx.saved_tensors[:7]
            Bsz, L, E = u.shape
            N = A.shape[1]
            blk, warps = TRITON_CFG['scan_bwd']
            nEB = triton.cdiv(E, blk)
            dy = dy.float().contiguous()
            dev = u.device
            if ctx.stored:
                hs = ctx.saved_tensors[7]
            else:
                hs = torch.empty(Bsz, L, E, N, device=dev, dtype=torch.float32)   # scratch states
            du = torch.empty_like(u)
            ddt = torch.empty_like(dt)
            dA_part = torch.empty(Bsz, E, N, device=dev, dtype=torch.float32)
            dB_part = torch.empty(Bsz, nEB, L, N, device=dev, dtype=torch.float32)
            dC_part = torch.empty_like(dB_part)
            dbias_part = torch.empty(Bsz, E, device=dev, dtype=torch.float32)
            dD_part = torch.empty_like(dbias_part)
            _scan_bwd_kernel[(Bsz, nEB)](
                u, dt, bias, A, Bm, Cm, D, dy, hs, du, ddt, dA_part, dB_part, dC_part, dbias_part, dD_part,
                L, E, u.stride(0), u.stride(1), dt.stride(0), dt.stride(1), Bm.stride(0), Bm.stride(1),
                Cm.stride(0), Cm.stride(1), hs.stride(0), hs.stride(1),
                dB_part.stride(0), dB_part.stride(1), dB_part.stride(2),
                N=N, BLOCK_E=blk, REVERSE=int(ctx.reverse), RECOMPUTE=int(not ctx.stored), num_warps=warps)
            return (du, ddt, dbias_part.sum(0).to(bias.dtype), dA_part.sum(0), dB_part.sum(1), dC_part.sum(1),
                    dD_part.sum(0).to(D.dtype), None)

    @triton.jit
    def _conv_tile(L, E, s_ob, s_ot, BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr):
        """One program's tile: image pid_b, all tokens offs_t (BLOCK_L >= L), BLOCK_E channels offs_e; `out`:
        the offsets of its elements in u (and dx), `m` their mask."""
        pid_b = tl.program_id(0).to(tl.int64)
        offs_e = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
        offs_t = tl.arange(0, BLOCK_L)
        mask_e = offs_e < E
        out = pid_b * s_ob + offs_t[:, None] * s_ot + offs_e[None, :]
        m = (offs_t < L)[:, None] & mask_e[None, :]
        return pid_b, offs_t, offs_e, mask_e, out, m

    @triton.jit
    def _conv_pre(xb, wf_ptr, bf_ptr, wb_ptr, bb_ptr, offs_t, offs_e, mask_e, L, s_xt,
                  K: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr):
        """The conv pre-activations of both directions on one tile (the forward computes them, the backward
        recomputes them rather than storing them): pre_f[t] = bf + sum_k wf[k] x[t-K+1+k],
        pre_b[t] = bb + sum_k wb[k] x[t+K-1-k] (zero padding), [BLOCK_L, BLOCK_E] in fp32; xb: the image's x."""
        acc_f = tl.zeros([BLOCK_L, BLOCK_E], dtype=tl.float32) + \
            tl.load(bf_ptr + offs_e, mask=mask_e, other=0.0).to(tl.float32)[None, :]
        acc_b = tl.zeros([BLOCK_L, BLOCK_E], dtype=tl.float32) + \
            tl.load(bb_ptr + offs_e, mask=mask_e, other=0.0).to(tl.float32)[None, :]
        for k in tl.static_range(K):
            tf = offs_t - (K - 1) + k
            xf = tl.load(xb + tf[:, None] * s_xt + offs_e[None, :],
                         mask=((tf >= 0) & (tf < L))[:, None] & mask_e[None, :], other=0.0).to(tl.float32)
            acc_f += xf * tl.load(wf_ptr + offs_e * K + k, mask=mask_e, other=0.0).to(tl.float32)[None, :]
            tb = offs_t + (K - 1) - k
            xv = tl.load(xb + tb[:, None] * s_xt + offs_e[None, :],
                         mask=((tb >= 0) & (tb < L))[:, None] & mask_e[None, :], other=0.0).to(tl.float32)
            acc_b += xv * tl.load(wb_ptr + offs_e * K + k, mask=mask_e, other=0.0).to(tl.float32)[None, :]
        return acc_f, acc_b

    @triton.jit
    def _conv_fwd_kernel(x_ptr, wf_ptr, bf_ptr, wb_ptr, bb_ptr, uf_ptr, ub_ptr,
                         L, E, s_xb, s_xt, s_ob, s_ot,
                         K: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr):
        """One program = one image x all tokens (BLOCK_L >= L) x BLOCK_E channels.
        u_f[t] = silu(bf + sum_k wf[k] x[t-K+1+k]),  u_b[t] = silu(bb + sum_k wb[k] x[t+K-1-k]) (zero padding).
        x [Bsz, L, E] with strides (s_xb, s_xt, 1) (a column slice of in_proj's output); w [E, K]; u contiguous."""
        pid_b, offs_t, offs_e, mask_e, out, m = _conv_tile(L, E, s_ob, s_ot, BLOCK_L, BLOCK_E)
        xb = x_ptr + pid_b * s_xb
        acc_f, acc_b = _conv_pre(xb, wf_ptr, bf_ptr, wb_ptr, bb_ptr, offs_t, offs_e, mask_e, L, s_xt, K, BLOCK_L, BLOCK_E)
        tl.store(uf_ptr + out, acc_f * tl.sigmoid(acc_f), mask=m)
        tl.store(ub_ptr + out, acc_b * tl.sigmoid(acc_b), mask=m)

    @triton.jit
    def _conv_bwd_kernel(x_ptr, wf_ptr, bf_ptr, wb_ptr, bb_ptr, guf_ptr, gub_ptr, gs_ptr, dx_ptr, dw_ptr, db_ptr,
                         L, E, s_xb, s_xt, s_ob, s_ot,
                         K: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr):
        """Phase 1: g = du * silu'(pre) for both directions -> scratch gs [Bsz, 2, L, E] (contiguous, the same
        strides as u per direction), bias and weight partial sums over tokens -> db [Bsz, 2, E], dw [Bsz, 2, K, E].
        Phase 2 (after a barrier, it reads neighbours' g): dx[s] = sum_k wf[k] g_f[s+K-1-k] + wb[k] g_b[s-K+1+k].
        dx is contiguous [Bsz, L, E] in x's dtype."""
        pid_b, offs_t, offs_e, mask_e, out, m = _conv_tile(L, E, s_ob, s_ot, BLOCK_L, BLOCK_E)
        xb = x_ptr + pid_b * s_xb
        acc_f, acc_b = _conv_pre(xb, wf_ptr, bf_ptr, wb_ptr, bb_ptr, offs_t, offs_e, mask_e, L, s_xt, K, BLOCK_L, BLOCK_E)
        sf = tl.sigmoid(acc_f)
        sb = tl.sigmoid(acc_b)
        g_f = tl.load(guf_ptr + out, mask=m, other=0.0) * sf * (1.0 + acc_f * (1.0 - sf))
        g_b = tl.load(gub_ptr + out, mask=m, other=0.0) * sb * (1.0 + acc_b * (1.0 - sb))
        gsb = gs_ptr + pid_b * 2 * s_ob                   # gs [Bsz, 2, L, E]: image stride 2 * s_ob
        tl.store(gsb + offs_t[:, None] * s_ot + offs_e[None, :], g_f, mask=m)
        tl.store(gsb + s_ob + offs_t[:, None] * s_ot + offs_e[None, :], g_b, mask=m)
        dbb = db_ptr + pid_b * 2 * E
        tl.store(dbb + offs_e, tl.sum(g_f, axis=0), mask=mask_e)
        tl.store(dbb + E + offs_e, tl.sum(g_b, axis=0), mask=mask_e)
        dwb = dw_ptr + pid_b * 2 * K * E
        for k in tl.static_range(K):
            tf = offs_t - (K - 1) + k
            xf = tl.load(xb + tf[:, None] * s_xt + offs_e[None, :],
                         mask=((tf >= 0) & (tf < L))[:, None] & mask_e[None, :], other=0.0).to(tl.float32)
            tl.store(dwb + k * E + offs_e, tl.sum(g_f * xf, axis=0), mask=mask_e)
            tb = offs_t + (K - 1) - k
            xv = tl.load(xb + tb[:, None] * s_xt + offs_e[None, :],
                         mask=((tb >= 0) & (tb < L))[:, None] & mask_e[None, :], other=0.0).to(tl.float32)
            tl.store(dwb + (K + k) * E + offs_e, tl.sum(g_b * xv, axis=0), mask=mask_e)
        tl.debug_barrier()
        dx = tl.zeros([BLOCK_L, BLOCK_E], dtype=tl.float32)
        for k in tl.static_range(K):
            s1 = offs_t + (K - 1) - k
            gf = tl.load(gsb + s1[:, None] * s_ot + offs_e[None, :],
                         mask=((s1 >= 0) & (s1 < L))[:, None] & mask_e[None, :], other=0.0)
            dx += gf * tl.load(wf_ptr + offs_e * K + k, mask=mask_e, other=0.0).to(tl.float32)[None, :]
            s2 = offs_t - (K - 1) + k
            gb = tl.load(gsb + s_ob + s2[:, None] * s_ot + offs_e[None, :],
                         mask=((s2 >= 0) & (s2 < L))[:, None] & mask_e[None, :], other=0.0)
            dx += gb * tl.load(wb_ptr + offs_e * K + k, mask=mask_e, other=0.0).to(tl.float32)[None, :]
        tl.store(dx_ptr + out, dx.to(dx_ptr.dtype.element_ty), mask=m)

    class _TritonConv(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, wf, bf, wb, bb):
            Bsz, L, E = x.shape
            K = wf.shape[-1]
            blk, warps = TRITON_CFG['conv']
            u_f = torch.empty(Bsz, L, E, device=x.device, dtype=torch.float32)
            u_b = torch.empty_like(u_f)
            wf2, wb2 = wf.reshape(E, K).contiguous(), wb.reshape(E, K).contiguous()
            _conv_fwd_kernel[(Bsz, triton.cdiv(E, blk))](
                x, wf2, bf, wb2, bb, u_f, u_b, L, E, x.stride(0), x.stride(1), u_f.stride(0), u_f.stride(1),
                K=K, BLOCK_L=triton.next_power_of_2(L), BLOCK_E=blk, num_warps=warps)
            ctx.save_for_backward(x, wf2, bf, wb2, bb)
            ctx.w_shape = wf.shape
            return u_f, u_b

        @staticmethod
        def backward(ctx, guf, gub):
            x, wf2, bf, wb2, bb = ctx.saved_tensors
            Bsz, L, E = x.shape
            K = wf2.shape[-1]
            blk, warps = TRITON_CFG['conv']
            guf = torch.zeros(Bsz, L, E, device=x.device) if guf is None else guf.float().contiguous()
            gub = torch.zeros(Bsz, L, E, device=x.device) if gub is None else gub.float().contiguous()
            gs = torch.empty(Bsz, 2, L, E, device=x.device, dtype=torch.float32)
            dx = torch.empty(Bsz, L, E, device=x.device, dtype=x.dtype)
            dw = torch.empty(Bsz, 2, K, E, device=x.device, dtype=torch.float32)
            db = torch.empty(Bsz, 2, E, device=x.device, dtype=torch.float32)
            _conv_bwd_kernel[(Bsz, triton.cdiv(E, blk))](
                x, wf2, bf, wb2, bb, guf, gub, gs, dx, dw, db, L, E, x.stride(0), x.stride(1),
                guf.stride(0), guf.stride(1),
                K=K, BLOCK_L=triton.next_power_of_2(L), BLOCK_E=blk, num_warps=warps)
            dw = dw.sum(0).transpose(1, 2)                # [2, E, K]
            db = db.sum(0)
            shape = ctx.w_shape
            return (dx, dw[0].reshape(shape).to(wf2.dtype), db[0].to(bf.dtype),
                    dw[1].reshape(shape).to(wb2.dtype), db[1].to(bb.dtype))

    @triton.jit
    def _gate_fwd_kernel(yf_ptr, yb_ptr, z_ptr, out_ptr, total, E, s_zr, BLOCK: tl.constexpr):
        """out = (y_f + y_b) * 0.5 * silu(z), flat over [rows, E]; y, out contiguous; z has row stride s_zr."""
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        m = offs < total
        zo = (offs // E) * s_zr + offs % E
        y = tl.load(yf_ptr + offs, mask=m, other=0.0) + tl.load(yb_ptr + offs, mask=m, other=0.0)
        z = tl.load(z_ptr + zo, mask=m, other=0.0).to(tl.float32)
        tl.store(out_ptr + offs, (y * 0.5 * z * tl.sigmoid(z)).to(out_ptr.dtype.element_ty), mask=m)

    @triton.jit
    def _gate_bwd_kernel(yf_ptr, yb_ptr, z_ptr, go_ptr, dy_ptr, dz_ptr, total, E, s_zr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        m = offs < total
        zo = (offs // E) * s_zr + offs % E
        y = tl.load(yf_ptr + offs, mask=m, other=0.0) + tl.load(yb_ptr + offs, mask=m, other=0.0)
        z = tl.load(z_ptr + zo, mask=m, other=0.0).to(tl.float32)
        go = tl.load(go_ptr + offs, mask=m, other=0.0).to(tl.float32) * 0.5
        s = tl.sigmoid(z)
        tl.store(dy_ptr + offs, go * z * s, mask=m)
        tl.store(dz_ptr + offs, (go * y * s * (1.0 + z * (1.0 - s))).to(dz_ptr.dtype.element_ty), mask=m)

    class _TritonGate(torch.autograd.Function):
        @staticmethod
        def forward(ctx, y_f, y_b, z):
            Bsz, L, E = y_f.shape
            total = Bsz * L * E
            blk, warps = TRITON_CFG['gate']
            # bf16 when z is bf16 (autocast: out_proj would cast to bf16 anyway), else fp32.
            out = torch.empty(Bsz, L, E, device=y_f.device, dtype=z.dtype)
            _gate_fwd_kernel[(triton.cdiv(total, blk),)](y_f, y_b, z, out, total, E, z.stride(1), BLOCK=blk,
                                                         num_warps=warps)
            ctx.save_for_backward(y_f, y_b, z)
            return out

        @staticmethod
        def backward(ctx, go):
            y_f, y_b, z = ctx.saved_tensors
            Bsz, L, E = y_f.shape
            total = Bsz * L * E
            blk, warps = TRITON_CFG['gate']
            go = go.contiguous()
            dy = torch.empty_like(y_f)
            dz = torch.empty(Bsz, L, E, device=z.device, dtype=z.dtype)
            _gate_bwd_kernel[(triton.cdiv(total, blk),)](y_f, y_b, z, go, dy, dz, total, E, z.stride(1),
                                                         BLOCK=blk, num_warps=warps)
            return dy, dy, dz


def _check_views(*ts):
    for t in ts:
        if t.stride(-1) != 1 or t.dim() != 3:
            raise ValueError('fused kernels need [Bsz, L, C] tensors with unit stride in the last dim')


def ssm_scan_triton(u, dt, dt_bias, A, Bm, Cm, D, reverse: bool = False) -> torch.Tensor:
    """y = scan(u, softplus(dt + dt_bias), A, Bm, Cm) + D * u in one kernel (fp32 math).
    u [Bsz, L, E] fp32; dt [Bsz, L, E] (bf16 or fp32, before the bias); Bm, Cm [Bsz, L, N] views of x_proj's output
    (any dtype/row stride); dt_bias, D [E]; A [E, N] fp32. Returns fp32 [Bsz, L, E]."""
    u = u.float().contiguous()
    dt = dt.contiguous()
    _check_views(Bm, Cm)
    return _TritonScan.apply(u, dt, dt_bias, A.float().contiguous(), Bm, Cm, D, bool(reverse))


def conv_silu_triton(x, wf, bf, wb, bb):
    """u_f, u_b (fp32 [Bsz, L, E]) = silu of the causal / anti-causal depthwise convs of x [Bsz, L, E] (a view)."""
    _check_views(x)
    return _TritonConv.apply(x, wf, bf, wb, bb)


def gate_triton(y_f, y_b, z):
    """((y_f + y_b) / 2) * silu(z); y fp32 contiguous, z a view; result in z's dtype."""
    _check_views(z)
    if z.stride(0) != z.shape[1] * z.stride(1):
        raise ValueError('gate: z must have a uniform row stride (a column slice of a contiguous tensor)')
    return _TritonGate.apply(y_f.float().contiguous(), y_b.float().contiguous(), z)


def triton_self_test(device: torch.device, log=print) -> bool:
    """The fused Triton path against the PyTorch path (chunked scan), on whole mixers with random weights:
    outputs and every gradient in fp32 (rel. error <= 1e-4), once with an inner width that is not a multiple of
    the channel block, plus one bf16-autocast run that must stay finite and close. Any exception -> False."""
    if not HAVE_TRITON or device.type != 'cuda':
        return False
    try:
        from vim_model import Mixer                     # late import: vim_model imports this module
        from vim_reference import VARIANTS
        worst = 0.0
        for D, L, amp in ((192, 50, False), (40, 37, False), (192, 50, True)):
            torch.manual_seed(D + L)
            mixer = Mixer(VARIANTS['vim-fmnist'].replace(embed_dim=D)).to(device)
            with torch.no_grad():
                for name, p in mixer.named_parameters():
                    p.add_(torch.randn_like(p) * 0.1 * (p.abs().mean() + 0.1))
            n = torch.randn(3, L, D, device=device)
            gout = torch.randn(3, L, D, device=device)
            res = []
            saved_store = TRITON_CFG['store_states']
            TRITON_CFG['store_states'] = (int(D != 40), 0)   # the small case runs the recompute path
            for impl in ('chunked', 'triton'):
                mixer.scan_impl = impl
                x = n.clone().requires_grad_(True)
                mixer.zero_grad(set_to_none=True)
                with torch.autocast(device_type='cuda', dtype=torch.bfloat16, enabled=amp):
                    out = mixer(x)
                (out.float() * gout).sum().backward()
                res.append([('out', out.detach().float()), ('d_input', x.grad)] +
                           [(k, p.grad) for k, p in mixer.named_parameters()])
            TRITON_CFG['store_states'] = saved_store
            tol = 3e-2 if amp else 1e-4
            for (name, ref), (_, got) in zip(*res):
                err = ((got.float() - ref.float()).norm() / ref.float().norm().clamp_min(1e-30)).item()
                if not math.isfinite(err) or err > tol:
                    log(f'triton self-test FAILED: {name} rel err {err:.3e} (D={D}, L={L}, amp={amp})')
                    return False
                if not amp:
                    worst = max(worst, err)
        log(f'triton self-test passed (fused conv/scan/gate vs PyTorch, worst fp32 rel err {worst:.2e})')
        return True
    except Exception as exc:  # compile or launch failure: report, fall back
        log(f'triton self-test FAILED with {type(exc).__name__}: {str(exc)[:800]}')
        return False

#!/usr/bin/env python3
"""Tests of the training code against the reference (tools/vim_reference/):
/usr/bin/python3 training/test_scan.py   (torch 1.13 or newer; ~30 s on 2 cores; test/python-reference.test.ts
runs it in `npm test`)

* chunked scan == the reference scan loop in float64 (~1e-10 relative or better): both directions, chunk lengths
  that divide L, that do not (padding) and that exceed L, decays down to exp(-80); all five gradients too;
  torch.autograd.gradcheck on the hand-written backward.
* the model's forward in float64 == the functional reference (vim_reference.forward: flip formulation of the
  backward branch, scan one token at a time), for the 'ref', 'chunked' and 'joint' (ONNX export) scans, both
  conv implementations, with and without gradients; the reference's own self-check of equivalent formulations.
* the fused Triton kernels == the PyTorch path (GPU only: skipped, with the reason, without CUDA and Triton).
* the official key list / shapes / parameter count of the shipped config, the Mamba initialisation, the idx reader.
Closes with the plain line "N passed, N failed".
"""
import gzip
import os
import struct
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'tools'))       # vim_reference

import numpy as np
import torch
import torch.nn.functional as F

import vim_reference as ref
from vim_reference import VARIANTS, expected_shapes, selective_scan
from scan import HAVE_TRITON, selective_scan_chunked, triton_self_test
from vim_model import VisionMamba
import data as fmnist

TOL = 1e-10


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b||, the comparison measure used throughout."""
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


def scan_inputs(gen, Bsz, L, E, N, harsh=False):
    """Random scan inputs in float64 with realistic ranges; `harsh` adds decays down to exp(-80) (A = -16,
    delta = 5) and near-1 decays (tiny delta), which stress the chunk carries."""
    def rnd(*s):
        return torch.randn(*s, generator=gen, dtype=torch.float64)
    u = rnd(Bsz, L, E)
    delta = F.softplus(rnd(Bsz, L, E) - 1.0)
    A = -torch.exp(rnd(E, N) * 0.7 + 1.0)
    if harsh:
        delta = delta * torch.exp(rnd(Bsz, L, E) * 2.0)        # spans ~1e-4 .. ~10
        delta = delta.clamp(max=5.0)
        A[:, -1] = -16.0
    return u, delta, A, rnd(Bsz, L, N), rnd(Bsz, L, N)


class ScanTests(unittest.TestCase):
    def setUp(self):
        self.gen = torch.Generator().manual_seed(0)

    def test_forward_matches_reference(self):
        for (Bsz, L, E, N) in ((2, 50, 12, 16), (3, 17, 5, 4), (1, 1, 3, 2)):
            for harsh in (False, True):
                u, delta, A, Bm, Cm = scan_inputs(self.gen, Bsz, L, E, N, harsh)
                for reverse in (False, True):
                    ref = selective_scan(u, delta, A, Bm, Cm, reverse=reverse)
                    for T in (None, 1, 3, 5, 7, 10, L, L + 4):
                        # inputs that need grad -> chunked states; plain inputs -> streaming (no-grad) path
                        for ins in ((u, delta, A, Bm, Cm), (u.requires_grad_(True), delta, A, Bm, Cm)):
                            got = selective_scan_chunked(*ins, reverse=reverse, chunk=T).detach()
                            self.assertLess(rel(got, ref.detach()), TOL,
                                            f'L={L} T={T} reverse={reverse} harsh={harsh} grad={u.requires_grad}')
                        u.requires_grad_(False)

    def test_reverse_is_flipped_forward(self):
        u, delta, A, Bm, Cm = scan_inputs(self.gen, 2, 23, 6, 8)
        fl = lambda t: t.flip(1)
        want = fl(selective_scan(fl(u), fl(delta), A, fl(Bm), fl(Cm)))
        got = selective_scan_chunked(u, delta, A, Bm, Cm, reverse=True, chunk=4)
        self.assertLess(rel(got, want), TOL)

    def test_gradients_match_reference(self):
        for (Bsz, L, E, N) in ((2, 50, 8, 16), (2, 13, 5, 3)):
            for harsh in (False, True):
                base = scan_inputs(self.gen, Bsz, L, E, N, harsh)
                gy = torch.randn(Bsz, L, E, generator=self.gen, dtype=torch.float64)
                for reverse in (False, True):
                    ins = [t.clone().requires_grad_(True) for t in base]
                    ref = torch.autograd.grad((selective_scan(*ins, reverse=reverse) * gy).sum(), ins)
                    for T in (None, 1, 4, 5, L):
                        ins = [t.clone().requires_grad_(True) for t in base]
                        y = selective_scan_chunked(*ins, reverse=reverse, chunk=T)
                        got = torch.autograd.grad((y * gy).sum(), ins)
                        for name, g, r in zip(('u', 'delta', 'A', 'B', 'C'), got, ref):
                            self.assertLess(rel(g, r), TOL, f'd{name} L={L} T={T} reverse={reverse}')

    def test_gradcheck(self):
        u, delta, A, Bm, Cm = scan_inputs(self.gen, 1, 9, 3, 2)
        for reverse in (False, True):
            for T in (2, 4, 9):
                ins = tuple(t.clone().requires_grad_(True) for t in (u, delta, A, Bm, Cm))
                self.assertTrue(torch.autograd.gradcheck(
                    lambda *a: selective_scan_chunked(*a, reverse=reverse, chunk=T), ins))


def random_model(cfg, seed: int) -> VisionMamba:
    """Model with its Mamba init, then every tensor perturbed so that no parameter sits at a special value."""
    torch.manual_seed(seed)
    m = VisionMamba(cfg).double()
    with torch.no_grad():
        for name, p in m.named_parameters():
            scale = 0.3 if ('A_log' in name or 'dt_proj' in name) else 0.1
            p.add_(torch.randn_like(p) * scale * (p.abs().mean() + 0.1))
    return m.eval()


def reference_logits(m: VisionMamba, img: torch.Tensor) -> torch.Tensor:
    """The functional reference (tools/vim_reference) on the model's weights: img [Bsz, C, H, W] -> [Bsz, classes]."""
    sd = {k: v.detach() for k, v in m.state_dict().items()}
    return torch.stack([ref.forward(sd, im, stride=m.cfg.stride)[0] for im in img])


class ModelTests(unittest.TestCase):
    cfg = VARIANTS['vim-fmnist'].replace(embed_dim=16, depth=2)

    def test_forward_matches_reference(self):
        m = random_model(self.cfg, 1)
        img = torch.randn(3, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        want = reference_logits(m, img)
        for impl, chunk in (('ref', None), ('chunked', None), ('chunked', 7), ('chunked', 50)):
            m.set_scan(impl, chunk)
            for conv in ('conv', 'shift'):
                for layer in m.layers:
                    layer.mixer.conv_impl = conv
                for grad in (False, True):                # no grad: streaming scan; grad: chunked states
                    with torch.set_grad_enabled(grad):
                        got = m(img)
                    self.assertLess(rel(got.detach(), want), TOL, f'{impl} chunk={chunk} conv={conv} grad={grad}')

    def test_joint_export_scan_matches_reference(self):
        m = random_model(self.cfg, 3)
        img = torch.randn(2, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
        m.set_scan('joint')
        with torch.no_grad():
            got = m(img)
        self.assertLess(rel(got, reference_logits(m, img)), TOL)

    def test_reference_self_check(self):
        checks = ref.self_check()      # raises past its tolerance: flip vs direct branch, gating once vs per branch
        self.assertLessEqual(max(checks.values()), ref.SELF_CHECK_TOL)

    def test_train_mode_without_drop_path_is_eval(self):
        m = random_model(self.cfg, 5)
        img = torch.randn(2, 1, 28, 28, dtype=torch.float64)
        with torch.no_grad():
            a = m(img)
            m.train()
            b = m(img)
        self.assertLess(rel(b, a), 1e-14)

    def test_official_keys_shapes_and_count(self):
        cfg = VARIANTS['vim-fmnist']                        # the shipped model
        self.assertEqual((cfg.grid, cfg.tokens, cfg.cls_index, cfg.inner, cfg.dt_rank), (7, 50, 24, 384, 12))
        m = VisionMamba(cfg)
        sd = m.state_dict()
        want = expected_shapes(cfg)
        self.assertEqual(list(sd.keys()), list(want.keys()))
        self.assertEqual(len(sd), 7 + 17 * 24)
        for k, shape in want.items():
            self.assertEqual(tuple(sd[k].shape), shape, k)
        self.assertEqual(sum(v.numel() for v in sd.values()), 6_784_330)
        per_layer = sum(v.numel() for k, v in sd.items() if k.startswith('layers.0.'))
        self.assertEqual(per_layer, 282_048)                # MODEL.md §3: per layer 282,048 at D = 192
        self.assertFalse(any('bias' in k for k in sd if 'in_proj' in k or 'x_proj' in k or 'out_proj' in k))

    def test_mamba_initialisation(self):
        cfg = VARIANTS['vim-fmnist'].replace(embed_dim=64, depth=3)
        m = VisionMamba(cfg)
        R = cfg.dt_rank
        for layer in m.layers:
            mx = layer.mixer
            for A_log in (mx.A_log, mx.A_b_log):
                self.assertTrue(torch.allclose(A_log, torch.log(torch.arange(1, 17.)).repeat(cfg.inner, 1)))
            for D in (mx.D, mx.D_b):
                self.assertTrue(torch.all(D == 1))
            for dtp in (mx.dt_proj, mx.dt_proj_b):
                dt = F.softplus(dtp.bias)
                self.assertTrue(bool(dt.min() >= 1e-3 * 0.999) and bool(dt.max() <= 0.1 * 1.001))
                self.assertLessEqual(dtp.weight.abs().max().item(), R ** -0.5)
            self.assertTrue(torch.all(layer.norm.weight == 1))

    def test_param_groups(self):
        m = VisionMamba(VARIANTS['vim-fmnist'].replace(embed_dim=32, depth=2))
        decay, no_decay = m.param_groups(0.05)
        names = {id(p): n for n, p in m.named_parameters()}
        nd = {names[id(p)] for p in no_decay['params']}
        for n in ('cls_token', 'pos_embed', 'layers.0.mixer.A_log', 'layers.1.mixer.D_b', 'norm_f.weight',
                  'layers.0.mixer.dt_proj.bias', 'head.bias'):
            self.assertIn(n, nd)
        d = {names[id(p)] for p in decay['params']}
        self.assertIn('layers.0.mixer.in_proj.weight', d)
        self.assertEqual(len(d) + len(nd), len(names))


class TritonTests(unittest.TestCase):
    @unittest.skipUnless(HAVE_TRITON and torch.cuda.is_available(), 'GPU only: needs CUDA and Triton')
    def test_fused_kernels_match_pytorch(self):
        self.assertTrue(triton_self_test(torch.device('cuda')))


class DataTests(unittest.TestCase):
    def _write(self, path, magic, dims, payload, gz=True):
        raw = struct.pack('>I', magic) + struct.pack(f'>{len(dims)}I', *dims) + bytes(payload)
        with open(path, 'wb') as f:
            f.write(gzip.compress(raw) if gz else raw)

    def test_idx_reader(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, 'a.gz')
            self._write(p, 0x803, (2, 2, 3), range(12))
            a = fmnist.read_idx(p, fmnist.MAGIC_IMAGES)
            self.assertEqual(a.shape, (2, 2, 3))
            self.assertEqual(int(a[1, 1, 2]), 11)
            self._write(p, 0x801, (3,), [1, 2, 3], gz=False)
            self.assertEqual(fmnist.read_idx(p, fmnist.MAGIC_LABELS).tolist(), [1, 2, 3])
            with self.assertRaises(fmnist.DatasetError):
                fmnist.read_idx(p, fmnist.MAGIC_IMAGES)                      # wrong magic
            self._write(p, 0x801, (4,), [1, 2, 3])
            with self.assertRaises(fmnist.DatasetError):
                fmnist.read_idx(p, fmnist.MAGIC_LABELS)                      # short payload
            self._write(p, 0x801, (3,), [1, 2, 3])
            with open(p, 'rb') as f:
                blob = f.read()
            with open(p, 'wb') as f:
                f.write(blob[:-6])
            with self.assertRaises(fmnist.DatasetError):
                fmnist.read_idx(p, fmnist.MAGIC_LABELS)                      # truncated gzip

    def test_real_files_if_installed(self):
        if not os.path.isdir(fmnist.DEFAULT_DIR):
            self.skipTest('dataset-fashion-mnist not installed')
        x, y = fmnist.load_split('test', fmnist.DEFAULT_DIR)
        self.assertEqual(x.shape, (10000, 28, 28))
        self.assertEqual(np.bincount(y, minlength=10).tolist(), [1000] * 10)


if __name__ == '__main__':
    # The tensors here are tiny: more threads only add synchronisation (20-50x slower on a busy 2-core machine).
    torch.set_num_threads(1)
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    print(f'{result.testsRun - failed - skipped} passed, {failed} failed' + (f', {skipped} skipped' if skipped else ''))
    sys.exit(1 if failed else 0)

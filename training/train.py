#!/usr/bin/env python3
"""Train the shipped default Vim on Fashion-MNIST (one GPU, one command, a fixed wall-clock budget).

  cd repo && PYTHONUNBUFFERED=1 python3 training/train.py --data .data/fashion-mnist --out $OUT --time-budget-min 8

Writes to --out: vim_fmnist.pth.part0, .part1, ... (torch.save({'model': state_dict}), fp32, official keys, split
into <= 15 MiB pieces; join with `cat vim_fmnist.pth.part* > models/vim_fmnist.pth`), train_log.jsonl (one line
per epoch) and test_eval.json (test top-1/top-5, the predicted class and logits of each of the 10,000 test images
in file order from a plain fp32 evaluation, the normalisation mean/std, the recipe).

Other modes:
  --bench 20            time 20 training steps per batch size (--bench-batches) and scan (--bench-scans), print
                        ms/step, peak memory and the implied seconds per epoch; no training.
  --eval-only CKPT      recompute test_eval.json from a joined checkpoint (CPU is fine: batched fp32).
  --depth 2 --dim 32 --epochs 1 --limit 512   a CPU smoke test of the whole pipeline.

Glossary: see vim_model.py (L tokens, D embed dim, E inner dim, N state size, R dt rank, K conv width, c cls index).
"""
import time

_T0 = time.time()   # the time budget counts from here (torch's import and the data load included)

import argparse
import copy
import hashlib
import io
import json
import math
import os
import platform
import sys
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'tools'))       # vim_reference: the model's facts and reference

import numpy as np
import torch
import torch.nn.functional as F

from data import DEFAULT_DIR, LABELS, load_fashion_mnist, load_split, pixel_mean_std
import scan as scan_ops
from scan import HAVE_TRITON, triton_self_test
from vim_model import VisionMamba
from vim_reference import RMS_EPS, VARIANTS, VimConfig, config_from_state_dict, expected_shapes, load_state_dict

PART_BYTES = 15 * 1024 * 1024
CKPT_NAME = 'vim_fmnist.pth'
SHIPPED = VARIANTS['vim-fmnist']     # the model's defaults; the image side and channels are Fashion-MNIST's


def log(msg: str) -> None:
    print(f'[{time.time() - _T0:7.1f}s] {msg}', flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    a = p.add_argument
    a('--data', default=DEFAULT_DIR, help='folder with the four Fashion-MNIST .gz files')
    a('--out', default='out', help='output folder')
    # model (defaults = the shipped model)
    a('--dim', type=int, default=SHIPPED.embed_dim, help='D')
    a('--depth', type=int, default=SHIPPED.depth)
    a('--patch', type=int, default=SHIPPED.patch, help='P = S')
    a('--drop-path', type=float, default=0.05)
    # recipe
    a('--epochs', type=int, default=45, help='planned epochs (at most; fitted to --time-budget-min)')
    a('--batch', type=int, default=256)
    a('--lr', type=float, default=1e-3, help='peak AdamW learning rate')
    a('--min-lr', type=float, default=1e-5)
    a('--warmup-epochs', type=float, default=2.0)
    a('--wd', type=float, default=0.05)
    a('--label-smoothing', type=float, default=0.1)
    a('--clip', type=float, default=1.0, help='max grad norm (0 = off)')
    a('--ema', type=float, default=0.998, help='EMA decay of the weights (0 = off)')
    a('--translate', type=int, default=2, help='random translation, pixels (zero padding + random crop)')
    a('--hflip', type=float, default=0.5)
    a('--erase', type=float, default=0.25, help='random-erasing probability')
    a('--val', type=int, default=5000, help='training images held out for validation')
    a('--limit', type=int, default=0, help='use only this many training images (smoke tests)')
    a('--seed', type=int, default=0)
    # machine
    a('--device', default='auto')
    a('--scan', default='auto', choices=['auto', 'triton', 'chunked', 'ref'])
    a('--chunk', type=int, default=0, help='chunk length of the chunked scan (0 = automatic)')
    a('--amp', default='auto', choices=['auto', 'on', 'off'], help='bf16 autocast (auto: on for CUDA)')
    a('--compile', action='store_true', help='torch.compile the model forward (optional, not the default)')
    a('--cuda-graph', default='auto', choices=['auto', 'off'], help='capture the training step (auto: on CUDA)')
    a('--triton-cfg', default='', help="kernel launch shapes, e.g. 'scan_bwd=16x1,scan_fwd=32x2' "
                                       "(channels per program x warps)")
    a('--eval-batch', type=int, default=0, help='0 = 1000 on CUDA, 50 on CPU (keeps the scan state in cache)')
    a('--time-budget-min', type=float, default=0.0, help='whole-run wall clock budget (0 = none)')
    a('--reserve-s', type=float, default=25.0, help='seconds kept free for the final evaluation and save')
    a('--save-full', action='store_true', help='also write the unsplit checkpoint')
    # other modes
    a('--bench', type=int, default=0, help='time this many training steps instead of training')
    a('--bench-batches', default='256,512')
    a('--bench-scans', default='auto', help="comma list of scans to bench, 'auto' = the chosen one")
    a('--bench-cfgs', default='', help="';'-separated --triton-cfg values to sweep (triton scan only)")
    a('--profile', action='store_true', help='with --bench: print the top GPU kernels of 5 steps')
    a('--eval-only', default='', help='checkpoint to evaluate on the test split (writes test_eval.json)')
    a('--eval-limit', type=int, default=0, help='with --eval-only: only the first N test images (quick checks)')
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------------------------
# data on the device, augmentation in batch
# ------------------------------------------------------------------------------------------------------------------

class Normalizer:
    def __init__(self, mean: float, std: float):
        self.mean, self.std = mean, std

    def __call__(self, x_u8: torch.Tensor) -> torch.Tensor:
        """uint8 [Bsz, 28, 28] -> float32 [Bsz, 1, 28, 28], (pixel / 255 - mean) / std."""
        return ((x_u8.float() / 255.0 - self.mean) / self.std)[:, None]


def augment(x_u8: torch.Tensor, norm: Normalizer, args) -> torch.Tensor:
    """Random translation (zero padding + crop), horizontal flip, normalisation, random erasing; all per image,
    all on the tensor's device in a handful of batched ops. uint8 [Bsz, H, W] -> float [Bsz, 1, H, W]."""
    Bsz, H, W = x_u8.shape
    dev = x_u8.device
    x = x_u8
    p = args.translate
    if p > 0:
        xp = F.pad(x, (p, p, p, p))                                       # background is 0 in Fashion-MNIST
        dy = torch.randint(0, 2 * p + 1, (Bsz, 1, 1), device=dev)
        dx = torch.randint(0, 2 * p + 1, (Bsz, 1, 1), device=dev)
        rows = dy + torch.arange(H, device=dev)[None, :, None]            # [Bsz, H, 1]
        cols = dx + torch.arange(W, device=dev)[None, None, :]            # [Bsz, 1, W]
        x = xp[torch.arange(Bsz, device=dev)[:, None, None], rows, cols]
    if args.hflip > 0:
        flip = torch.rand(Bsz, 1, 1, device=dev) < args.hflip
        x = torch.where(flip, x.flip(-1), x)
    x = norm(x)                                                           # [Bsz, 1, H, W] float
    if args.erase > 0:
        # timm-style random erasing: area 2-25 %, aspect ratio log-uniform in [0.3, 3.3], filled with 0
        # (= the mean pixel after normalisation).
        area = torch.empty(Bsz, device=dev).uniform_(0.02, 0.25) * (H * W)
        ratio = torch.exp(torch.empty(Bsz, device=dev).uniform_(math.log(0.3), math.log(3.3)))
        eh = torch.sqrt(area * ratio).round().clamp(1, H)
        ew = torch.sqrt(area / ratio).round().clamp(1, W)
        y0 = (torch.rand(Bsz, device=dev) * (H - eh + 1)).floor()
        x0 = (torch.rand(Bsz, device=dev) * (W - ew + 1)).floor()
        on = torch.rand(Bsz, device=dev) < args.erase
        r = torch.arange(H, device=dev, dtype=torch.float32)
        c = torch.arange(W, device=dev, dtype=torch.float32)
        in_r = (r[None, :] >= y0[:, None]) & (r[None, :] < (y0 + eh)[:, None])    # [Bsz, H]
        in_c = (c[None, :] >= x0[:, None]) & (c[None, :] < (x0 + ew)[:, None])    # [Bsz, W]
        mask = in_r[:, :, None] & in_c[:, None, :] & on[:, None, None]
        x = x.masked_fill(mask[:, None], 0.0)
    return x


# ------------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------------

def autocast_ctx(device: torch.device, enabled: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def predict(model, images_u8: torch.Tensor, norm: Normalizer, batch: int, amp: bool, device: torch.device):
    """Logits [n, classes] (float32, on the device) for uint8 images [n, H, W] (any device)."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, images_u8.shape[0], batch):
        xb = norm(images_u8[i:i + batch].to(device, non_blocking=True))
        with autocast_ctx(device, amp):
            out.append(model(xb).float())
    model.train(was_training)
    return torch.cat(out)


def accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    topk = logits.topk(k, dim=1).indices
    return (topk == labels[:, None]).any(dim=1).float().mean().item()


def lr_at(step: int, total: int, warmup: int, peak: float, floor: float) -> float:
    """Linear warmup to `peak`, then cosine to `floor` at `total` steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * t))


class Trainer:
    """One optimisation step = augmentation, forward (bf16 autocast), label-smoothed loss, backward, grad clip,
    AdamW, EMA update; everything on the device, no host sync.

    On CUDA the step is captured once in a CUDA graph (after 3 eager warm-up steps on a side stream) and replayed:
    eagerly the CPU needs ~110 ms to launch the ~2,000 kernels of a batch-512 step while the GPU needs ~80 ms, so
    without the graph the run is CPU-bound. The graph needs fixed addresses, hence the static index buffer, the
    learning rate and EMA decay as device tensors, and AdamW(fused, capturable). Capture failure -> eager."""

    WARMUP_STEPS = 3

    def __init__(self, model, ema_model, train_x, train_y, norm, args, device, amp, batch, use_graph):
        self.model, self.ema_model = model, ema_model
        self.train_x, self.train_y, self.norm, self.args = train_x, train_y, norm, args
        self.device, self.amp, self.batch = device, amp, batch
        self.use_graph = use_graph and device.type == 'cuda'
        self.params = list(model.parameters())
        self.ema = list(ema_model.parameters()) if ema_model is not None else []
        self.idx = torch.zeros(batch, dtype=torch.long, device=device)
        if self.use_graph:
            self.lr_t = torch.tensor(float(args.lr), device=device)
            self.ema_d = torch.tensor(0.0, device=device)
        self.opt = self._make_optimizer()
        self.graph = None
        self.loss_static = None
        self.n_warm = 0
        self.side = torch.cuda.Stream(device) if self.use_graph else None
        self.mode = 'cuda-graph' if self.use_graph else 'eager'

    def _make_optimizer(self):
        groups = self.model.param_groups(self.args.wd)
        kw = dict(betas=(0.9, 0.999), eps=1e-8)
        if self.use_graph:
            for g in groups:
                g['lr'] = self.lr_t                     # one device tensor shared by the groups: fill_() per step
            return torch.optim.AdamW(groups, lr=self.lr_t, fused=True, capturable=True, **kw)
        if self.device.type == 'cuda':
            try:
                return torch.optim.AdamW(groups, lr=self.args.lr, fused=True, **kw)     # torch >= 2.0
            except (TypeError, RuntimeError):
                pass
        return torch.optim.AdamW(groups, lr=self.args.lr, **kw)

    def reset_optimizer_state(self) -> None:
        """Zero AdamW's moments and step counts in place (keeps a captured graph valid)."""
        for st in self.opt.state.values():
            for v in st.values():
                if torch.is_tensor(v):
                    v.zero_()

    def _body(self) -> torch.Tensor:
        args = self.args
        xb = augment(self.train_x[self.idx], self.norm, args)
        yb = self.train_y[self.idx]
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp,
                            cache_enabled=False):
            logits = self.model(xb)
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=args.label_smoothing)
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, args.clip)
        self.opt.step()
        if self.ema:
            with torch.no_grad():
                if self.use_graph:                      # decay as a device tensor: ema = d * ema + (1 - d) * p
                    torch._foreach_mul_(self.ema, self.ema_d)
                    torch._foreach_add_(self.ema, torch._foreach_mul(self.params, 1.0 - self.ema_d))
                else:
                    torch._foreach_mul_(self.ema, self._ema_d)
                    torch._foreach_add_(self.ema, self.params, alpha=1.0 - self._ema_d)
        return loss.detach()

    def step(self, idx: torch.Tensor, lr: float, step_no: int) -> torch.Tensor:
        """Run one step on the images train_x[idx] (idx: [batch] long on the device); returns the loss (device)."""
        d = min(self.args.ema, (1.0 + step_no) / (10.0 + step_no)) if self.ema else 0.0
        self.idx.copy_(idx)
        if not self.use_graph:
            for g in self.opt.param_groups:
                g['lr'] = lr
            self._ema_d = d
            self.opt.zero_grad(set_to_none=True)
            return self._body()
        self.lr_t.fill_(lr)
        self.ema_d.fill_(d)
        if self.graph is not None:
            self.graph.replay()
            return self.loss_static
        cur = torch.cuda.current_stream(self.device)
        if self.n_warm < self.WARMUP_STEPS:             # eager warm-up on a side stream (compiles the kernels,
            self.side.wait_stream(cur)                  # creates cuBLAS workspaces) before the capture
            with torch.cuda.stream(self.side):
                self.opt.zero_grad(set_to_none=True)
                loss = self._body()
            cur.wait_stream(self.side)
            self.n_warm += 1
            return loss
        try:
            torch.cuda.synchronize(self.device)
            self.opt.zero_grad(set_to_none=True)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.loss_static = self._body()
            self.graph = graph
            log('training step captured in a CUDA graph')
        except Exception as exc:
            log(f'CUDA graph capture failed ({type(exc).__name__}: {str(exc)[:300]}); eager steps from now on')
            torch.cuda.synchronize(self.device)
            self.graph, self.use_graph, self.mode = None, False, 'eager (graph capture failed)'
            self.opt = self._make_optimizer()           # its state may hold half-captured tensors
            return self.step(idx, lr, step_no)
        self.graph.replay()                             # the capture only recorded: now run it
        return self.loss_static


def set_fp32_exact() -> None:
    """Plain fp32 (no TF32) for matmuls and convs; the bf16 autocast regions are unaffected."""
    torch.set_float32_matmul_precision('highest')
    try:
        torch.backends.cudnn.allow_tf32 = False
    except Exception:
        pass


def apply_triton_cfg(spec: str) -> None:
    for item in filter(None, spec.split(',')):
        name, val = item.split('=')
        blk, warps = val.lower().split('x')
        if name not in scan_ops.TRITON_CFG:
            raise SystemExit(f'--triton-cfg: unknown kernel {name!r}; one of {sorted(scan_ops.TRITON_CFG)}')
        scan_ops.TRITON_CFG[name] = (int(blk), int(warps))


def choose_scan(args, device) -> str:
    if args.scan != 'auto':
        if args.scan == 'triton' and not triton_self_test(device, log):
            log('WARNING: --scan triton failed its self-test; using the chunked scan')
            return 'chunked'
        return args.scan
    if device.type == 'cuda' and HAVE_TRITON and triton_self_test(device, log):
        return 'triton'
    return 'chunked'


def official_state_dict(model: VisionMamba) -> 'OrderedDict[str, torch.Tensor]':
    sd = OrderedDict((k, v.detach().to('cpu', torch.float32).contiguous().clone())
                     for k, v in model.state_dict().items())
    want = expected_shapes(model.cfg)
    assert list(sd) == list(want), 'state_dict keys differ from the official layout'
    for k, shape in want.items():
        assert tuple(sd[k].shape) == shape, f'{k}: {tuple(sd[k].shape)} != {shape}'
    return sd


def save_checkpoint(model: VisionMamba, out_dir: str, save_full: bool) -> dict:
    buf = io.BytesIO()
    torch.save({'model': official_state_dict(model)}, buf)
    data = buf.getvalue()
    parts = []
    for i, off in enumerate(range(0, len(data), PART_BYTES)):
        name = f'{CKPT_NAME}.part{i}'
        with open(os.path.join(out_dir, name), 'wb') as f:
            f.write(data[off:off + PART_BYTES])
        parts.append(name)
    if save_full:
        with open(os.path.join(out_dir, CKPT_NAME), 'wb') as f:
            f.write(data)
    info = {'bytes': len(data), 'sha256': hashlib.sha256(data).hexdigest(), 'parts': parts}
    log(f'checkpoint: {len(data)} bytes in {len(parts)} parts, sha256 {info["sha256"][:16]}...')
    return info


def config_record(cfg: VimConfig, drop_path: float) -> dict:
    """The model config as the logs record it: fields, derived dims, RMSNorm epsilon, stochastic-depth rate."""
    return {**cfg.to_dict(), 'norm_eps': RMS_EPS, 'drop_path': drop_path}


def test_evaluation(model, test_x, test_y, norm, args, device, extra: dict) -> dict:
    """Plain fp32 (no autocast, no TF32) evaluation with the exact PyTorch scan; one prediction per test image."""
    set_fp32_exact()
    prev = model.layers[0].mixer.scan_impl
    model.set_scan('chunked', args.chunk or None)
    t = time.time()
    logits = predict(model, test_x, norm, args.eval_batch, amp=False, device=device).cpu()
    model.set_scan(prev, args.chunk or None)
    labels = test_y.cpu().long()
    res = {
        'top1': accuracy(logits, labels, 1),
        'top5': accuracy(logits, labels, 5),
        'count': int(labels.shape[0]),
        'mean': norm.mean, 'std': norm.std,
        'preprocess': {'resize': 28, 'crop': 28, 'interpolation': 'bicubic', 'channels': 1,
                       'normalize': '(pixel / 255 - mean) / std'},
        'labels': LABELS,
        'eval': {'dtype': 'float32', 'autocast': False, 'tf32': False, 'scan': 'chunked (exact PyTorch)',
                 'device': str(device), 'torch': torch.__version__, 'seconds': round(time.time() - t, 2)},
        **extra,
        'predictions': logits.argmax(1).tolist(),
        'logits': [[round(v, 5) for v in row] for row in logits.tolist()],
    }
    return res


def write_json(path: str, obj) -> None:
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'))
        f.write('\n')


# ------------------------------------------------------------------------------------------------------------------
# modes
# ------------------------------------------------------------------------------------------------------------------

def pick_device(args) -> torch.device:
    dev = torch.device(args.device if args.device != 'auto' else 'cuda' if torch.cuda.is_available() else 'cpu')
    if not args.eval_batch:
        args.eval_batch = 1000 if dev.type == 'cuda' else 50
    return dev


def run_eval_only(args) -> None:
    device = pick_device(args)
    if device.type == 'cpu':
        torch.set_num_threads(os.cpu_count() or 1)
    ckpt = args.eval_only
    sd = load_state_dict(ckpt)
    cfg = config_from_state_dict(sd)                                    # stride = patch, as the shipped model
    model = VisionMamba(cfg)
    model.load_state_dict(sd, strict=True)
    model.to(device)
    tr_x, _ = load_split('train', args.data)
    mean, std = pixel_mean_std(tr_x)
    log(f'eval-only {ckpt}: config {config_record(cfg, 0.0)}; mean {mean:.6f} std {std:.6f}')
    te_x, te_y = load_split('test', args.data)
    if args.eval_limit:
        te_x, te_y = te_x[:args.eval_limit], te_y[:args.eval_limit]
    with open(ckpt, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    res = test_evaluation(model, torch.from_numpy(np.array(te_x)), torch.from_numpy(te_y.astype(np.int64)),
                          Normalizer(mean, std), args, device,
                          {'checkpoint': os.path.basename(ckpt), 'checkpoint_sha256': sha,
                           'config': config_record(cfg, 0.0)})
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, 'test_eval.json'), res)
    log(f'test top-1 {100 * res["top1"]:.2f}%  top-5 {100 * res["top5"]:.2f}%  ({res["eval"]["seconds"]} s) '
        f'-> {os.path.join(args.out, "test_eval.json")}')


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.eval_only:
        run_eval_only(args)
        return
    device = pick_device(args)
    amp = device.type == 'cuda' if args.amp == 'auto' else args.amp == 'on'
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
        log(f'device {torch.cuda.get_device_name(device)}; torch {torch.__version__}; python '
            f'{platform.python_version()}')
    else:
        torch.set_num_threads(os.cpu_count() or 1)
        log(f'device cpu ({os.cpu_count()} threads); torch {torch.__version__}')
    set_fp32_exact()
    apply_triton_cfg(args.triton_cfg)
    budget_s = args.time_budget_min * 60 if args.time_budget_min > 0 else float('inf')

    # ---- data: everything to the device once, as uint8 ----
    ds = load_fashion_mnist(args.data)
    mean, std = pixel_mean_std(ds['train_images'])
    norm = Normalizer(mean, std)
    log(f'data {args.data}: train {ds["train_images"].shape}, test {ds["test_images"].shape}; '
        f'pixel/255 mean {mean:.6f} std {std:.6f} (all 60,000 training images)')
    perm = np.random.RandomState(args.seed).permutation(ds['train_images'].shape[0])
    val_idx, tr_idx = perm[:args.val], perm[args.val:]
    if args.limit:
        tr_idx = tr_idx[:args.limit]

    def to_dev(a, dtype=None):
        t = torch.from_numpy(np.array(a, copy=True))
        return t.to(device) if dtype is None else t.to(device, dtype)

    train_x, train_y = to_dev(ds['train_images'][tr_idx]), to_dev(ds['train_labels'][tr_idx], torch.long)
    val_x, val_y = to_dev(ds['train_images'][val_idx]), to_dev(ds['train_labels'][val_idx], torch.long)
    test_x, test_y = to_dev(ds['test_images']), to_dev(ds['test_labels'], torch.long)
    n_train = train_x.shape[0]

    # ---- model ----
    cfg = SHIPPED.replace(patch=args.patch, stride=args.patch, embed_dim=args.dim, depth=args.depth)
    model = VisionMamba(cfg, drop_path=args.drop_path).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    scan_impl = choose_scan(args, device)
    model.set_scan(scan_impl, args.chunk or None)
    log(f'model: D {cfg.embed_dim}, depth {cfg.depth}, E {cfg.inner}, N {cfg.d_state}, R {cfg.dt_rank}, '
        f'L {cfg.tokens}, c {cfg.cls_index}; {n_params:,} params; scan {scan_impl}; amp {"bf16" if amp else "off"}')

    if args.bench:
        run_bench(args, model, cfg, train_x, train_y, norm, device, amp, val_x, val_y)
        return

    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, 'train_log.jsonl')
    open(log_path, 'w').close()

    batch = min(args.batch, n_train)
    spe = n_train // batch                                              # steps per epoch (drop the ragged end)
    warmup = int(round(args.warmup_epochs * spe))
    planned = args.epochs
    ema_model = None
    if args.ema > 0:
        ema_model = copy.deepcopy(model)
        for p in ema_model.parameters():
            p.requires_grad_(False)
    use_graph = device.type == 'cuda' and args.cuda_graph != 'off' and not args.compile
    if args.compile:
        log('--compile: torch.compile is applied to the model forward; CUDA graphs off')
        model.forward = torch.compile(model.forward)
    trainer = Trainer(model, ema_model, train_x, train_y, norm, args, device, amp, batch, use_graph)

    def snapshot():
        return ({k: v.detach().clone() for k, v in model.state_dict().items()},
                {k: v.detach().clone() for k, v in ema_model.state_dict().items()} if ema_model else None)

    good = snapshot()
    lr_scale = 1.0
    step = 0
    epoch = 0
    t_val = 1.0
    epoch_times = []
    stop_reason = 'planned epochs done'
    log(f'training: {n_train} images, batch {batch}, {spe} steps/epoch, planned {planned} epochs, '
        f'budget {"none" if budget_s == float("inf") else f"{budget_s:.0f}s"}, step mode {trainer.mode}')

    def reserve() -> float:
        # Final phase: raw + EMA val evals (t_val, the fast path) and the fp32 test evaluation on the exact PyTorch
        # scan, ~7x slower per image than the bf16 Triton path on the H100 (3.2 s for 10,000 images) + the save.
        return args.reserve_s + t_val * (1.0 + 8.0 * test_x.shape[0] / max(1, 2 * val_x.shape[0]))

    while epoch < planned:
        epoch += 1
        t_ep = time.time()
        model.train()
        order = torch.randperm(n_train, device=device)
        loss_sum = torch.zeros((), device=device)
        done_steps = 0
        lr = args.lr
        for it in range(spe):
            lr = lr_scale * lr_at(step, planned * spe, warmup, args.lr, args.min_lr)
            loss_sum += trainer.step(order[it * batch:(it + 1) * batch], lr, step)
            step += 1
            done_steps += 1
            if it % 25 == 24:
                if device.type == 'cuda':
                    torch.cuda.synchronize(device)      # the host may run far ahead of graph replays
                if time.time() - _T0 > budget_s - reserve():
                    stop_reason = 'time budget reached inside an epoch'
                    break
        train_loss = (loss_sum / max(done_steps, 1)).item()                 # the one sync of the epoch
        t_train = time.time() - t_ep
        tv = time.time()
        val_acc = accuracy(predict(model, val_x, norm, args.eval_batch, amp, device), val_y)
        val_ema = (accuracy(predict(ema_model, val_x, norm, args.eval_batch, amp, device), val_y)
                   if ema_model is not None else None)
        t_val = time.time() - tv
        ep_s = time.time() - t_ep
        epoch_times.append(ep_s)
        if not math.isfinite(train_loss):
            # Divergence: back to the last good weights (copied in place), zeroed AdamW moments, half the lr.
            model.load_state_dict(good[0])
            if ema_model is not None:
                ema_model.load_state_dict(good[1])
            trainer.reset_optimizer_state()
            lr_scale *= 0.5
            log(f'epoch {epoch}: non-finite loss; restored epoch {epoch - 1} weights, lr scale {lr_scale}')
        else:
            good = snapshot()
        elapsed = time.time() - _T0
        rec = {'epoch': epoch, 'train_loss': round(train_loss, 5), 'val_acc': round(val_acc, 5),
               'val_acc_ema': None if val_ema is None else round(val_ema, 5), 'lr': lr,
               'steps': done_steps, 'train_seconds': round(t_train, 2), 'epoch_seconds': round(ep_s, 2),
               'elapsed_seconds': round(elapsed, 1), 'planned_epochs': planned}
        with open(log_path, 'a') as f:
            f.write(json.dumps(rec) + '\n')
        ema_txt = '' if val_ema is None else f' (ema {100 * val_ema:.2f}%)'
        log(f'epoch {epoch}/{planned} loss {train_loss:.4f} val {100 * val_acc:.2f}%{ema_txt} lr {lr:.2e} '
            f'epoch {ep_s:.1f}s')
        if stop_reason != 'planned epochs done':
            break
        # Re-plan: if the measured epoch time says the plan will not fit, shorten it now (the cosine follows).
        if budget_s == float('inf'):
            continue
        # Epoch 1 includes the CUDA-graph capture and kernel JIT (12.2 s vs 10.2 s on the H100), so its estimate
        # is conservative; after epoch 2 (still inside the warm-up, where the cosine has not started) the plan may
        # grow back up to --epochs. From epoch 3 on it can only shrink (slowest of the last two epochs).
        est = epoch_times[-1] if epoch <= 2 else max(epoch_times[-2:])
        fit = epoch + int(max(0.0, budget_s - elapsed - reserve()) // est)
        new = min(args.epochs if epoch == 2 else planned, fit)
        if new != planned:
            log(f're-plan: {est:.1f}s/epoch, {budget_s - elapsed:.0f}s left (reserve {reserve():.0f}s) -> '
                f'{new} epochs instead of {planned}')
            planned = max(new, epoch)
            if planned == epoch:
                stop_reason = 'time budget'

    # ---- final: pick raw vs EMA on validation, fp32 test evaluation, save ----
    chosen = 'raw'
    val_final = accuracy(predict(model, val_x, norm, args.eval_batch, amp, device), val_y)
    if ema_model is not None:
        val_final_ema = accuracy(predict(ema_model, val_x, norm, args.eval_batch, amp, device), val_y)
        if val_final_ema > val_final:
            chosen, val_final = 'ema', val_final_ema
            model.load_state_dict(ema_model.state_dict())
    log(f'stopped: {stop_reason}; {epoch} epochs, {step} steps; saving the {chosen} weights '
        f'(val {100 * val_final:.2f}%)')
    ckpt = save_checkpoint(model, args.out, args.save_full)
    extra = {
        'weights': chosen, 'val_top1': val_final, 'val_count': int(val_x.shape[0]),
        'epochs': epoch, 'steps': step, 'stop_reason': stop_reason, 'train_scan': scan_impl,
        'step_mode': trainer.mode,
        'train_seconds': round(time.time() - _T0, 1), 'params': n_params, 'config': config_record(cfg, args.drop_path),
        'recipe': {k: v for k, v in vars(args).items() if k not in ('bench', 'bench_batches', 'bench_scans',
                                                                      'eval_only')},
        'checkpoint': ckpt,
    }
    res = test_evaluation(model, test_x, test_y, norm, args, device, extra)
    write_json(os.path.join(args.out, 'test_eval.json'), res)
    log(f'TEST top-1 {100 * res["top1"]:.2f}%  top-5 {100 * res["top5"]:.2f}%  (fp32, {res["eval"]["seconds"]}s); '
        f'total {time.time() - _T0:.0f}s')


def run_bench(args, model, cfg, train_x, train_y, norm, device, amp, val_x, val_y) -> None:
    """ms per training step (the Trainer's full step) for each scan / kernel config / batch size."""
    scans = [model.layers[0].mixer.scan_impl] if args.bench_scans == 'auto' else args.bench_scans.split(',')
    runs = []
    for impl in scans:
        for cfg in (args.bench_cfgs.split(';') if impl == 'triton' and args.bench_cfgs else ['']):
            runs.append((impl, cfg))
    rows = []
    n = train_x.shape[0]
    base_cfg = dict(scan_ops.TRITON_CFG)
    for impl, cfg in runs:
        model.set_scan(impl, args.chunk or None)
        scan_ops.TRITON_CFG.clear()
        scan_ops.TRITON_CFG.update(base_cfg)
        apply_triton_cfg(cfg)
        for bs in [int(b) for b in args.bench_batches.split(',')]:
            m = copy.deepcopy(model)
            ema = copy.deepcopy(m)
            use_graph = device.type == 'cuda' and args.cuda_graph != 'off'
            tr = Trainer(m, ema, train_x, train_y, norm, args, device, amp, bs, use_graph)
            label = impl + (f'[{cfg}]' if cfg else '') + ('+graph' if use_graph else '')
            if device.type == 'cuda':
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            try:
                for i in range(Trainer.WARMUP_STEPS + 2):
                    tr.step(torch.randint(0, n, (bs,), device=device), args.lr, i)
                if tr.mode != 'cuda-graph':
                    label = impl + (f'[{cfg}]' if cfg else '') + '+eager'
                if device.type == 'cuda':
                    torch.cuda.synchronize()
                t = time.time()
                for i in range(args.bench):
                    loss = tr.step(torch.randint(0, n, (bs,), device=device), args.lr, 10 + i)
                loss = loss.item()
                ms = (time.time() - t) * 1000 / args.bench
                peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == 'cuda' else float('nan')
                if args.profile and device.type == 'cuda' and not rows:
                    from torch.profiler import profile, ProfilerActivity
                    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                        for i in range(5):
                            tr.step(torch.randint(0, n, (bs,), device=device), args.lr, 100 + i)
                        torch.cuda.synchronize()
                    for key in ('self_cuda_time_total', 'self_device_time_total'):
                        try:
                            print(prof.key_averages().table(sort_by=key, row_limit=30, max_name_column_width=60),
                                  flush=True)
                            break
                        except Exception:
                            continue
                tv = time.time()
                predict(m, val_x, norm, args.eval_batch, amp, device)
                if device.type == 'cuda':
                    torch.cuda.synchronize()
                t_val = time.time() - tv
                ep = ms / 1000 * (55000 // bs) + t_val
                rows.append((label, bs, ms, peak, ep, t_val, loss))
                log(f'bench {label} batch={bs}: {ms:.1f} ms/step, {bs * 1000 / ms:.0f} img/s, peak '
                    f'{peak:.1f} GiB, val eval {t_val:.2f}s -> {ep:.1f} s/epoch (55,000 images); loss {loss:.3f}')
            except RuntimeError as exc:                                       # e.g. out of memory
                log(f'bench {label} batch={bs}: FAILED {str(exc)[:300]}')
            del m, ema, tr
    print(f'\n{"scan":48s} batch  ms/step  peak GiB  s/epoch  epochs in 7.5 min', flush=True)
    for label, bs, ms, peak, ep, _, _ in rows:
        print(f'{label:48s} {bs:5d} {ms:8.1f} {peak:9.1f} {ep:8.1f} {int(450 // ep):8d}', flush=True)


if __name__ == '__main__':
    main()

"""Golden fixtures for vimedge: seeded random Vim weights in the official layout + reference outputs.

For one config this writes into --out:
  model.pth            torch.save({'model': state_dict}), float32, official keys (MODEL.md §3)
  model.safetensors    the same tensors, safetensors format written by hand (keys sorted)
  input-<i>.f32        3 seeded normalised inputs [C, H, W], raw little-endian float32
  dump-<name>.f32      intermediate tensors of input 0 from the float64 reference, rounded to float32
  manifest.json        config, logits (float64 and torch-float32), top-5, dump index, fp32-vs-fp64 errors
Every field of the manifest is documented in tools/README.md. The reference itself is tools/vim_reference/.

  /usr/bin/python3 tools/make_golden_fixtures.py --config small --out test/fixtures/small/small
  /usr/bin/python3 tools/make_golden_fixtures.py --all-small            # -> test/fixtures/small/<config>/
  /usr/bin/python3 tools/make_golden_fixtures.py --tiny --out test/fixtures/generated/tiny --skip-if-current

Glossary: see vim_reference/__init__.py (C, H, P, S, G, M, L, c, D, E, N, R, K).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import struct
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Dict

import numpy as np
import torch

import vim_reference as ref

# Bump when the meaning or content of the outputs changes (weights, inputs, dumps, manifest fields).
GENERATOR_VERSION = 1
FORMAT = 'vimedge-golden-fixtures'
NUM_INPUTS = 3
TOP_K = 5
SMALL_ROOT = Path('test/fixtures/small')

# name -> (config, seed, trace_mixer). The small ones are committed; tiny is the published Vim-Ti shape, generated
# in CI. trace_mixer: also dump layer 0's mixer internals ([L, E] each); skipped for the committed configs whose
# mixer is the same code at another L, to keep test/fixtures/small under 2 MB.
CONFIGS: Dict[str, tuple] = {
    'small': (ref.VimConfig(img_size=64, in_chans=3, patch=16, stride=16, embed_dim=32, depth=2,
                            num_classes=10), 1001, True),
    'small-stride8': (ref.VimConfig(img_size=64, in_chans=3, patch=16, stride=8, embed_dim=32, depth=2,
                                    num_classes=10), 1002, False),
    'small-gray': (ref.VimConfig(img_size=28, in_chans=1, patch=4, stride=4, embed_dim=32, depth=3,
                                 num_classes=10), 1003, False),
    'tiny': (ref.VARIANTS['vim-tiny'], 1004, True),
}
SMALL_CONFIGS = ('small', 'small-stride8', 'small-gray')

# Scales of the random weights. Biases, norm weights, A_log and D are perturbed away from their "init"
# values so that a runtime that ignores or swaps one of them (e.g. D vs D_b, norm weight dropped) is caught.
CLS_POS_STD = 0.5    # the spec's 0.02 would let a misplaced cls/pos row slip under the tolerances
BIAS_STD = 0.1
NORM_W_STD = 0.1
A_LOG_STD = 0.05
D_SKIP_STD = 0.1
DT_MIN, DT_MAX = 1e-3, 1e-1
WEIGHT_INIT = {
    'cls_token, pos_embed': f'N(0, {CLS_POS_STD}^2)',
    '*.weight of patch_embed.proj, in_proj, x_proj(_b), dt_proj(_b), out_proj, conv1d(_b), head':
        'N(0, 1/fan_in), fan_in = C*P*P, D, E, R, E, K, D respectively',
    'patch_embed.proj.bias, conv1d(_b).bias, head.bias': f'N(0, {BIAS_STD}^2)',
    'dt_proj(_b).bias': f'inverse softplus of dt, dt log-uniform in [{DT_MIN}, {DT_MAX}]',
    'A_log, A_b_log': f'log(n+1) for state n = 0..N-1, every channel, + N(0, {A_LOG_STD}^2)',
    'D, D_b': f'1 + N(0, {D_SKIP_STD}^2)',
    'layers.*.norm.weight, norm_f.weight': f'1 + N(0, {NORM_W_STD}^2)',
}


# --------------------------------------------------------------------------------------------------------------
# Weights and inputs
# --------------------------------------------------------------------------------------------------------------

def make_weights(cfg: ref.VimConfig, seed: int) -> "OrderedDict[str, torch.Tensor]":
    """Seeded float32 state dict in the official key order (MODEL.md §3). Drawn in float64, then rounded."""
    rng = np.random.default_rng([seed, 0])
    D, E, N, R, K = cfg.embed_dim, cfg.inner, cfg.d_state, cfg.dt_rank, cfg.d_conv
    fan_in = {'patch_embed.proj.weight': cfg.in_chans * cfg.patch ** 2, 'head.weight': D,
              'in_proj.weight': D, 'x_proj.weight': E, 'x_proj_b.weight': E, 'dt_proj.weight': R,
              'dt_proj_b.weight': R, 'out_proj.weight': E, 'conv1d.weight': K, 'conv1d_b.weight': K}

    def init(key: str, shape: tuple) -> np.ndarray:
        leaf = key.split('mixer.')[-1]
        if key in ('cls_token', 'pos_embed'):
            return rng.normal(0.0, CLS_POS_STD, shape)
        if leaf in fan_in:
            return rng.normal(0.0, fan_in[leaf] ** -0.5, shape)
        if leaf in ('dt_proj.bias', 'dt_proj_b.bias'):
            dt = np.exp(rng.uniform(math.log(DT_MIN), math.log(DT_MAX), shape))
            return np.log(np.expm1(dt))                       # softplus(bias) == dt
        if leaf.endswith('.bias'):
            return rng.normal(0.0, BIAS_STD, shape)
        if leaf in ('A_log', 'A_b_log'):
            return np.log(np.arange(1, N + 1, dtype=np.float64))[None, :] + rng.normal(0.0, A_LOG_STD, shape)
        if leaf in ('D', 'D_b'):
            return 1.0 + rng.normal(0.0, D_SKIP_STD, shape)
        if key.endswith('norm.weight') or key == 'norm_f.weight':
            return 1.0 + rng.normal(0.0, NORM_W_STD, shape)
        raise KeyError(key)

    sd = OrderedDict((k, torch.from_numpy(init(k, s).astype(np.float32)))
                     for k, s in ref.expected_shapes(cfg).items())
    ref.check_state_dict(sd, cfg)
    return sd


def make_input(cfg: ref.VimConfig, seed: int, index: int) -> torch.Tensor:
    """Seeded normalised-input tensor [C, H, W] float32 ~ N(0, 1) (the range of ImageNet-normalised pixels)."""
    rng = np.random.default_rng([seed, 1, index])
    return torch.from_numpy(rng.standard_normal((cfg.in_chans, cfg.img_size, cfg.img_size)).astype(np.float32))


# --------------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def file_entry(path: Path) -> dict:
    return {'file': path.name, 'bytes': path.stat().st_size, 'sha256': sha256_file(path)}


def write_f32(path: Path, t: torch.Tensor) -> None:
    path.write_bytes(t.detach().to(torch.float32).contiguous().numpy().astype('<f4').tobytes())


def write_safetensors(path: Path, sd: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> None:
    """safetensors: u64 LE header length, JSON header {key: {dtype, shape, data_offsets}}, raw LE data.

    Keys sorted, tensors packed back to back in that order; offsets are relative to the end of the header.
    The header is space-padded to a multiple of 8 bytes so the data (and every f32 tensor) stays aligned.
    """
    header, blobs, offset = {'__metadata__': metadata}, [], 0
    for key in sorted(sd):
        data = sd[key].contiguous().numpy().astype('<f4').tobytes()
        header[key] = {'dtype': 'F32', 'shape': list(sd[key].shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def read_safetensors(path: Path) -> Dict[str, torch.Tensor]:
    """Reader for the F32 subset written above; used to verify the file round-trips bit-exactly."""
    raw = path.read_bytes()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop('__metadata__', None)
    out = {}
    for key, e in header.items():
        assert e['dtype'] == 'F32', e
        b, end = e['data_offsets']
        out[key] = torch.from_numpy(np.frombuffer(raw[8 + n + b:8 + n + end], dtype='<f4').reshape(e['shape']).copy())
    return out


def source_sha256() -> str:
    """Hash of the generator and the reference: a changed source makes generated fixtures stale."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in sorted((here / 'vim_reference').glob('*.py')) + [here / 'make_golden_fixtures.py']:
        h.update(path.read_bytes())
    return h.hexdigest()


def is_current(out: Path, name: str) -> bool:
    """True when out/manifest.json was written by this generator version and source for this config and
    every file it lists is present with the recorded size and sha256."""
    try:
        m = json.loads((out / 'manifest.json').read_text())
        if (m['format'], m['generator']['version'], m['generator']['source_sha256'], m['config']['name']) != \
                (FORMAT, GENERATOR_VERSION, source_sha256(), name):
            return False
        for e in m['files']:
            p = out / e['file']
            if p.stat().st_size != e['bytes'] or sha256_file(p) != e['sha256']:
                return False
        return True
    except (OSError, KeyError, ValueError):
        return False


# --------------------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------------------

def rel_err(approx: torch.Tensor, truth: torch.Tensor) -> float:
    """max |approx - truth| / max |truth| (the error measure used throughout the manifest)."""
    return ((approx.double() - truth).abs().max() / truth.abs().max()).item()


def dump_layers(depth: int) -> list:
    """Layers whose residual/mixer dumps are kept: first, second, middle and last (0, 1, 11, 23 for Vim-Ti)."""
    return sorted({0, min(1, depth - 1), depth // 2 - 1 if depth > 2 else 0, depth - 1})


def ranking(logits: torch.Tensor) -> torch.Tensor:
    """Class indices by descending logit; ties keep the lower index first."""
    return torch.argsort(logits, descending=True, stable=True)


def score_input(file: str, shape: list, logits64: torch.Tensor, logits32: torch.Tensor) -> dict:
    """Manifest entry of one input: both logit vectors, top-5 lists and how far float32 is from float64."""
    order64 = ranking(logits64)
    top = logits64[order64[:TOP_K + 1]]
    return {
        'file': file, 'shape': shape, 'dtype': 'float32',
        'logits_f64': logits64.tolist(),
        'logits_f32': logits32.double().tolist(),           # exact: every float32 is a double
        'top5': order64[:TOP_K].tolist(),
        'top5_f32': ranking(logits32)[:TOP_K].tolist(),
        'top5_min_gap': (top[:-1] - top[1:]).min().item(),
        'logits_rel_err_f32_vs_f64': rel_err(logits32, logits64),
        'logits_max_abs_diff_f32_vs_f64': (logits32.double() - logits64).abs().max().item(),
    }


def config_entry(name: str, cfg: ref.VimConfig, seed: int) -> dict:
    derived = {'d_inner': cfg.inner, 'dt_rank': cfg.dt_rank, 'grid': cfg.grid, 'num_patches': cfg.num_patches,
               'tokens': cfg.tokens, 'cls_index': cfg.cls_index, 'rms_eps': ref.RMS_EPS}
    return {'name': name, 'seed': seed, **dataclasses.asdict(cfg), **derived}


def write_weights(out: Path, name: str, cfg: ref.VimConfig, sd: Dict[str, torch.Tensor]) -> None:
    """model.pth and model.safetensors; both are read back and must hold exactly `sd`."""
    torch.save({'model': sd}, out / 'model.pth')
    write_safetensors(out / 'model.safetensors', sd,
                      {'format': 'pt', 'generator': f'vimedge make_golden_fixtures.py v{GENERATOR_VERSION}',
                       'config': name})
    for label, loaded in (('pth', torch.load(out / 'model.pth', map_location='cpu')['model']),
                          ('safetensors', read_safetensors(out / 'model.safetensors'))):
        ref.check_state_dict(loaded, cfg)
        assert all(torch.equal(loaded[k], sd[k]) for k in sd), f'{label} round trip changed a tensor'


def generate(name: str, out: Path) -> dict:
    """Write every fixture file of config `name` into `out`; returns the manifest."""
    cfg, seed, trace_mixer = CONFIGS[name]
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    checks = ref.self_check()   # raises if the equivalent formulations of the mixer disagree

    sd = make_weights(cfg, seed)
    write_weights(out, name, cfg, sd)
    files = ['model.pth', 'model.safetensors']
    layers = dump_layers(cfg.depth)
    inputs, dumps, forward_s = [], {}, []
    for i in range(NUM_INPUTS):
        img = make_input(cfg, seed, i)
        write_f32(out / f'input-{i}.f32', img)
        files.append(f'input-{i}.f32')
        want = dict(dump_layers=layers, trace_mixer_layer=0 if trace_mixer else None) if i == 0 else {}
        t0 = time.perf_counter()
        logits64, d64 = ref.forward(sd, img, cfg.stride, torch.float64, **want)
        logits32, d32 = ref.forward(sd, img, cfg.stride, torch.float32, **want)
        forward_s.append(round(time.perf_counter() - t0, 2))
        inputs.append(score_input(f'input-{i}.f32', list(img.shape), logits64, logits32))
        for key, t64 in d64.items() if want else ():
            fname = f'dump-{key}.f32'
            write_f32(out / fname, t64)
            files.append(fname)
            dumps[key] = {'file': fname, 'shape': list(t64.shape), 'dtype': 'float32',
                          'max_abs': t64.abs().max().item(), 'rel_err_f32_vs_f64': rel_err(d32[key], t64)}

    manifest = {
        'format': FORMAT,
        'generator': {'script': 'tools/make_golden_fixtures.py', 'version': GENERATOR_VERSION,
                      'source_sha256': source_sha256(), 'torch': torch.__version__,
                      'command': f'/usr/bin/python3 tools/make_golden_fixtures.py --config {name} --out {out}'},
        'config': config_entry(name, cfg, seed),
        'weights': {'pth': 'model.pth', 'pth_key': 'model', 'safetensors': 'model.safetensors',
                    'num_tensors': len(sd), 'num_params': sum(t.numel() for t in sd.values()),
                    'dtype': 'float32', 'init': WEIGHT_INIT},
        'inputs': inputs,
        'dumps': {'input': 0, 'source': 'float64 reference rounded to float32', 'layers': layers,
                  'mixer_trace_layer': 0 if trace_mixer else None, 'tensors': dumps},
        'fp32_vs_fp64': {'definition': 'max|f32 - f64| / max|f64|, torch float32 CPU vs the float64 reference',
                         'logits_rel_err_max': max(e['logits_rel_err_f32_vs_f64'] for e in inputs),
                         'dumps_rel_err_max': max(d['rel_err_f32_vs_f64'] for d in dumps.values()),
                         'top5_f32_equals_f64': all(e['top5'] == e['top5_f32'] for e in inputs)},
        'self_check': {'tolerance': ref.SELF_CHECK_TOL, **checks},
        'files': [file_entry(out / f) for f in files],
    }
    (out / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n')
    size = sum((out / f).stat().st_size for f in files + ['manifest.json'])
    err = manifest['fp32_vs_fp64']
    print(f'{name}: L={cfg.tokens} c={cfg.cls_index} -> {out} ({size / 1e6:.2f} MB); f32 vs f64 rel err: logits '
          f'{err["logits_rel_err_max"]:.2e}, dumps {err["dumps_rel_err_max"]:.2e}; forward f64+f32 per input '
          f'{forward_s} s; total {time.perf_counter() - t_start:.1f} s', flush=True)
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument('--config', choices=sorted(CONFIGS), help='one config, written to --out')
    what.add_argument('--all-small', action='store_true', help=f'every small config, into {SMALL_ROOT}/<config>/')
    what.add_argument('--tiny', action='store_true', help='the Vim-Ti shape (224x224, D=192, depth 24)')
    ap.add_argument('--out', type=Path, help='output folder (required with --config and --tiny)')
    ap.add_argument('--skip-if-current', action='store_true',
                    help='do nothing for a folder whose manifest matches this generator version and source')
    ap.add_argument('--threads', type=int, default=int(os.environ.get('VIM_REF_THREADS', 2)))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.all_small:
        jobs = [(n, SMALL_ROOT / n) for n in SMALL_CONFIGS]
    else:
        if args.out is None:
            ap.error('--out is required with --config / --tiny')
        jobs = [('tiny' if args.tiny else args.config, args.out)]
    for name, out in jobs:
        if args.skip_if_current and is_current(out, name):
            print(f'{name}: {out} is up to date (generator v{GENERATOR_VERSION}), skipped')
            continue
        generate(name, out)
    return 0


if __name__ == '__main__':
    sys.exit(main())

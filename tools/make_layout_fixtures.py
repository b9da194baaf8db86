#!/usr/bin/python3
"""The checkpoint layouts people have, written by torch.save itself from one small Vim model, and
checkpoints of shapes the kernels cannot run (docs/MODEL.md §3).

Run with Debian's python (torch 1.13):  /usr/bin/python3 tools/make_layout_fixtures.py [out_dir]
Reads test/fixtures/small/small/model.pth; writes into out_dir (default test/fixtures/generated/layouts):

  plain.pth              {'model': state_dict}, float32: the file every layout below must equal
  ddp.pth                {'model': ...} with every key prefixed 'module.' (DistributedDataParallel)
  compiled.pth           a bare state_dict, every key prefixed '_orig_mod.' (torch.compile)
  ddp-compiled.pth       'module._orig_mod.' (DDP around a compiled model)
  timm.pth               timm's {'epoch', 'arch', 'state_dict', 'optimizer', 'version', 'metric', 'state_dict_ema'}
  ema.pth                Vim's training layout whose 'model_ema' is plain's weights and 'model' other ones
  ddp.safetensors        the state_dict with 'module.' keys
  fp16.pth, bf16.pth     the weights stored in float16 / bfloat16
  fp16-as-f32.pth, bf16-as-f32.pth   the same rounded values stored in float32: what fp16/bf16 must equal
  head-token.pth         training args naming a head-class-token model (the shapes are plain's)
  limit-*.pth            shapes the kernels cannot run: d_state 8, D not a multiple of 4, and zero-size
                         conv1d (K = 0), A_log (N = 0), dt_proj (R = 0), inner dim (E = 0) and head (0 classes)

Skipped when out_dir/manifest.json names this generator's version.
"""
import argparse
import json
import sys
from collections import OrderedDict
from pathlib import Path

import torch

from make_reader_fixtures import tiny_vim_state_dict

VERSION = 1
ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / 'test/fixtures/small/small/model.pth'
VIM_NAME = 'vim_small_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2'


def prefixed(sd, prefix):
    return OrderedDict((prefix + k, v) for k, v in sd.items())


def vim_state_dict(**shape):
    """Spec §3 keys (random values: shapes are what these test) at the small model's size unless told."""
    return tiny_vim_state_dict(**{'D': 32, 'depth': 1, 'N': 16, 'P': 16, 'classes': 10, **shape})


def write_safetensors(path, sd):
    """The safetensors layout by hand (Debian has no safetensors package): float32, keys in order."""
    header, blobs, offset = {'__metadata__': {'format': 'pt'}}, [], 0
    for key, t in sd.items():
        raw = t.float().contiguous().numpy().tobytes()
        header[key] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, 'little') + text + b''.join(blobs))


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / 'test/fixtures/generated/layouts'
    manifest = out / 'manifest.json'
    if manifest.exists() and json.loads(manifest.read_text()).get('version') == VERSION:
        return
    out.mkdir(parents=True, exist_ok=True)
    sd = torch.load(SOURCE)['model']
    other = OrderedDict((k, v * 0.5 + 0.01) for k, v in sd.items())
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=1e-3)
    args = lambda model: argparse.Namespace(model=model, lr=5e-4, epochs=300, no_amp=True)
    files = {
        'plain.pth': {'model': sd},
        'ddp.pth': {'model': prefixed(sd, 'module.')},
        'compiled.pth': prefixed(sd, '_orig_mod.'),
        'ddp-compiled.pth': {'model': prefixed(sd, 'module._orig_mod.')},
        'timm.pth': {'epoch': 3, 'arch': 'vim_small', 'state_dict': sd, 'optimizer': opt.state_dict(), 'version': 2,
                     'metric': 0.5, 'state_dict_ema': other},
        'ema.pth': {'model': other, 'optimizer': opt.state_dict(), 'epoch': 7, 'model_ema': sd, 'args': args(VIM_NAME)},
        'head-token.pth': {'model': sd, 'args': args('vim_small_patch16_224_bimambav2_with_cls_token')},
        'limit-dstate8.pth': {'model': vim_state_dict(N=8)},
        'limit-dim6.pth': {'model': vim_state_dict(D=6, E=12, R=1)},
        'limit-zero-conv1d.pth': {'model': vim_state_dict(K=0)},
        'limit-zero-A_log.pth': {'model': vim_state_dict(N=0)},
        'limit-zero-dt_proj.pth': {'model': vim_state_dict(R=0)},
        'limit-zero-inner.pth': {'model': vim_state_dict(E=0)},
        'limit-zero-classes.pth': {'model': vim_state_dict(classes=0)},
    }
    for dtype, name in [(torch.float16, 'fp16'), (torch.bfloat16, 'bf16')]:
        files[f'{name}.pth'] = {'model': OrderedDict((k, v.to(dtype)) for k, v in sd.items())}
        files[f'{name}-as-f32.pth'] = {'model': OrderedDict((k, v.to(dtype).float()) for k, v in sd.items())}
    for name, obj in files.items():
        torch.save(obj, out / name)
    write_safetensors(out / 'ddp.safetensors', prefixed(sd, 'module.'))
    manifest.write_text(json.dumps({'version': VERSION, 'source': str(SOURCE.relative_to(ROOT)),
                                    'files': sorted([*files, 'ddp.safetensors'])}, indent=1) + '\n')


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""Small real checkpoints for the .pth / .safetensors reader tests, written by torch.save itself.

Run with Debian's python (torch 1.13):  /usr/bin/python3 tools/make_reader_fixtures.py [out_dir]
Writes test/fixtures/readers/*.pth, *.safetensors and expected.json. expected.json maps
file -> key -> {"shape", "f32"}, where f32 is base64 of the little-endian float32 values torch holds
(after .float(), in row-major order), so the TS readers can be compared bit for bit, NaN and Inf included.
"""
import argparse
import base64
import json
import struct
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch

from vim_reference import state_dict_shapes

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / 'test/fixtures/readers'
expected = {}


def f32_base64(t):
    return base64.b64encode(t.detach().float().contiguous().numpy().astype('<f4').tobytes()).decode()


def record(file, sd):
    expected[file] = {k: {'shape': list(v.shape), 'f32': f32_base64(v)} for k, v in sd.items()}


def save(file, obj, sd=None, **kwargs):
    torch.save(obj, OUT / file, **kwargs)
    if sd is not None:
        record(file, sd)


def plain_state_dict():
    g = torch.Generator().manual_seed(1)
    return OrderedDict([
        ('weight', torch.randn(3, 4, generator=g)),
        ('bias', torch.randn(3, generator=g)),
        ('scalar', torch.tensor(2.5)),
        ('empty', torch.zeros(0, 3)),
        ('specials', torch.tensor([float('inf'), float('-inf'), float('nan'), -0.0, 1e-40, 3.4e38])),
    ])


def tiny_vim_state_dict(D=8, depth=2, N=4, K=4, P=4, L=17, classes=5, C=3, E=None, R=None):
    """MODEL.md §3 keys at a tiny size (not a trained model: shapes and exact values are what matter), drawn in
    the official key order; any dimension may be zero. E and R default to 2D and ceil(D / 16)."""
    E = 2 * D if E is None else E
    R = -(-D // 16) if R is None else R
    shapes = state_dict_shapes(D=D, E=E, N=N, R=R, K=K, C=C, P=P, L=L, classes=classes, depth=depth)
    g = torch.Generator().manual_seed(2)
    return OrderedDict((k, torch.randn(*shape, generator=g)) for k, shape in shapes.items())


def training_checkpoint(sd):
    """The shape of hustvl/Vim main.py's checkpoint: model, AdamW state, scheduler, EMA, scaler, args."""
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    ema = OrderedDict((k, v * 0.5) for k, v in sd.items())
    args = argparse.Namespace(model='vim_tiny', lr=5e-4, epochs=300, no_amp=True, output_dir='out',
                              betas=(0.9, 0.999), seed=2 ** 40, resume='', mixup=None, devices=[0, 1])
    return {'model': sd, 'optimizer': opt.state_dict(), 'lr_scheduler': {'base_values': [5e-4], 't_initial': 300},
            'epoch': 7, 'model_ema': ema, 'scaler': {}, 'args': args,
            'int_counter': torch.tensor([3, 4], dtype=torch.int64)}


def with_big_endian_storages(src, dst):
    """torch on a big-endian host writes byteorder 'big' and byte-swapped storages; fake one from a file
    whose storages are all float32 (torch 1.13 cannot write big-endian itself)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED) as zout:
        prefix = zin.namelist()[0].split('/')[0]
        for info in zin.infolist():
            data = zin.read(info)
            if '/data/' in info.filename:
                data = b''.join(data[i:i + 4][::-1] for i in range(0, len(data), 4))
            zout.writestr(info.filename, data)
        zout.writestr(f'{prefix}/byteorder', 'big')


def write_safetensors(path, sd, dtypes):
    """The safetensors layout written by hand (no safetensors package on Debian): header padded with
    spaces to a multiple of 8, tensors in key order, little-endian."""
    header, blobs, offset = {'__metadata__': {'format': 'pt'}}, [], 0
    names = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64'}
    for key, t in sd.items():
        t = t.to(dtypes.get(key, torch.float32)).contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[key] = {'dtype': names[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    path.write_bytes(struct.pack('<Q', len(text)) + text + b''.join(blobs))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    plain = plain_state_dict()
    save('bare.pth', plain, plain)
    save('protocol4.pth', plain, plain, pickle_protocol=4)

    tiny = tiny_vim_state_dict()
    save('tiny-vim-training.pth', training_checkpoint(tiny), tiny)
    write_safetensors(OUT / 'tiny-vim.safetensors', tiny, {})
    record('tiny-vim.safetensors', tiny)

    g = torch.Generator().manual_seed(3)
    base = torch.randn(4, 6, generator=g)
    lows = OrderedDict([('half', torch.randn(5, 3, generator=g).half()),
                        ('bfloat', torch.randn(2, 7, generator=g).bfloat16()),
                        ('double', torch.randn(3, 2, generator=g).double()),
                        ('half_specials', torch.tensor([65504.0, 6e-8, float('inf'), -0.0]).half())])
    save('dtypes.pth', {'model': lows}, lows)
    write_safetensors(OUT / 'dtypes.safetensors', lows,
                      {k: v.dtype for k, v in lows.items()})
    record('dtypes.safetensors', lows)

    views = OrderedDict([
        ('base', base),
        ('transposed', base.t()),                    # stride (1, 6)
        ('rows_1_to_3', base.narrow(0, 1, 2)),       # storage offset 6, shares base's storage
        ('column_2', base[:, 2]),                    # offset 2, stride 6
        ('permuted', torch.randn(2, 3, 4, generator=g).permute(2, 0, 1)),
        ('every_other', torch.randn(10, generator=g)[1::2]),
    ])
    save('views.pth', views, views)

    params = OrderedDict(torch.nn.Linear(3, 2).named_parameters())
    save('parameters.pth', params, params)

    save('int-tensor-in-model.pth', {'model': OrderedDict([('w', torch.ones(2)),
                                                          ('steps', torch.tensor([1, 2], dtype=torch.int64))])})
    save('expanded-view.pth', OrderedDict([('w', torch.ones(1, 3).expand(1000, 3))]))
    shared = torch.ones(1000)
    save('repeated-views.pth', OrderedDict((f'w{i}', shared) for i in range(20)))
    save('legacy-format.pth', plain, _use_new_zipfile_serialization=False)

    save('little.pth', plain)
    with_big_endian_storages(OUT / 'little.pth', OUT / 'big-endian.pth')
    (OUT / 'little.pth').unlink()
    record('big-endian.pth', plain)

    (OUT / 'expected.json').write_text(json.dumps(expected, indent=1) + '\n')
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f'wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT}')


if __name__ == '__main__':
    main()

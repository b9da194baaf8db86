#!/usr/bin/python3
"""Hostile pickles and torch archives for the restricted-unpickler tests (test/fixtures/hostile/).

Run with Debian's python (torch 1.13):  /usr/bin/python3 tools/make_hostile_pickles.py [--verify]

Each payload, if a real unpickler ran it, creates /tmp/vimedge-pwned-<name>; the TS tests load every file,
expect a VimedgeError and check that no marker appears. MANIFEST.json lists file, loader ('pickle' = the
unpickler on the raw bytes, 'checkpoint' = readCheckpoint), what it tries, the expected error code and a
fragment the message must contain, and whether Python's own pickle / torch.load would run the payload.

--verify loads every file with Python's pickle.loads / torch.load (weights_only=False, the torch 1.13
default) in a child process and checks that exactly the files marked "executes_in_python" create their
marker (the payloads only `touch` a file under /tmp). That proves the corpus is hostile, not just odd.
"""
import io
import json
import os
import pickle as P
import struct
import subprocess
import sys
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / 'test/fixtures/hostile'
manifest = []


def marker(name):
    return f'/tmp/vimedge-pwned-{name}'


# --- a tiny pickle assembler (opcode bytes come from the pickle module's constants) ------------------------

def proto(version):
    return P.PROTO + bytes([version])


def glob(module, name):
    return P.GLOBAL + f'{module}\n{name}\n'.encode()


def text(s):
    raw = s.encode()
    return P.BINUNICODE + struct.pack('<I', len(raw)) + raw


def integer(n):
    return P.BININT1 + bytes([n]) if 0 <= n < 256 else P.BININT + struct.pack('<i', n)


def tup(*items):
    return P.MARK + b''.join(items) + P.TUPLE


def call(fn, *args):
    return fn + tup(*args) + P.REDUCE


def dict_of(*pairs):
    return P.EMPTY_DICT + P.MARK + b''.join(k + v for k, v in pairs) + P.SETITEMS


def touch(name):
    """A shell command creating the marker: the payload argument of os.system-like callables."""
    return text(f'touch {marker(name)}')


ORDERED_DICT = glob('collections', 'OrderedDict') + P.EMPTY_TUPLE + P.REDUCE
FLOAT_STORAGE = glob('torch', 'FloatStorage')


def storage(key, numel, storage_type=FLOAT_STORAGE):
    return tup(text('storage'), storage_type, text(key), text('cpu'), integer(numel)) + P.BINPERSID


def tensor(storage_arg, numel, hooks=ORDERED_DICT):
    return call(glob('torch._utils', '_rebuild_tensor_v2'),
                storage_arg, integer(0), tup(integer(numel)), tup(integer(1)), P.NEWFALSE, hooks)


def checkpoint(model):
    """{'model': <model>} as a protocol-2 pickle."""
    return proto(2) + dict_of((text('model'), model)) + P.STOP


def torch_zip(data_pkl, storages=None, compress=zipfile.ZIP_STORED):
    """The torch.save zip layout around an arbitrary data.pkl."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        z.writestr('archive/data.pkl', data_pkl, compress_type=compress)
        for key, raw in (storages or {}).items():
            z.writestr(f'archive/data/{key}', raw)
        z.writestr('archive/version', '3\n')
        z.writestr('archive/byteorder', 'little')
    return buf.getvalue()


def add(name, loader, data, tries, code, message, executes_in_python):
    ext = '.pkl' if loader == 'pickle' else '.pth'
    file = name + ext
    (OUT / file).write_bytes(data)
    manifest.append({'file': file, 'loader': loader, 'tries': tries, 'code': code, 'message': message,
                     'marker': marker(name), 'executes_in_python': executes_in_python})


class Reduce:
    """An object that pickles as `fn(*args)`: how real-world malicious pickles are usually made."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def build():
    import builtins
    import subprocess as sp
    import torch

    # Globals that run commands, each refused where it is named.
    add('os-system', 'pickle', proto(2) + call(glob('os', 'system'), touch('os-system')) + P.STOP,
        'os.system via GLOBAL + REDUCE', 'UNSAFE_PICKLE', "'os.system'", True)
    add('posix-system', 'pickle', P.dumps(Reduce(os.system, f'touch {marker("posix-system")}'), protocol=2),
        'os.system pickled by Python itself (written as posix.system on Linux) via __reduce__',
        'UNSAFE_PICKLE', "'posix.system'", True)
    add('nt-system', 'pickle', proto(2) + call(glob('nt', 'system'), touch('nt-system')) + P.STOP,
        'nt.system (os.system on Windows)', 'UNSAFE_PICKLE', "'nt.system'", False)
    add('subprocess-popen', 'pickle',
        P.dumps(Reduce(sp.Popen, ['touch', marker('subprocess-popen')]), protocol=2, fix_imports=False),
        'subprocess.Popen via __reduce__', 'UNSAFE_PICKLE', "'subprocess.Popen'", True)
    add('builtins-eval', 'pickle',
        P.dumps(Reduce(builtins.eval, f"__import__('os').system('touch {marker('builtins-eval')}')"),
                protocol=2, fix_imports=False),
        'builtins.eval of a Python expression', 'UNSAFE_PICKLE', "'builtins.eval'", True)
    add('builtin-exec', 'pickle',
        P.dumps(Reduce(builtins.exec, f"import os; os.system('touch {marker('builtin-exec')}')"), protocol=2),
        'exec under its Python 2 name __builtin__.exec (protocol 2 with fix_imports)',
        'UNSAFE_PICKLE', "'__builtin__.exec'", True)
    system = call(glob('builtins', 'getattr'), call(glob('builtins', '__import__'), text('os')), text('system'))
    add('getattr-chain', 'pickle', proto(2) + system + tup(touch('getattr-chain')) + P.REDUCE + P.STOP,
        "builtins.getattr(builtins.__import__('os'), 'system')(cmd)", 'UNSAFE_PICKLE', "'builtins.getattr'", True)
    stack_global = (proto(4) + P.SHORT_BINUNICODE + b'\x02os' + P.MEMOIZE + P.SHORT_BINUNICODE + b'\x06system'
                    + P.MEMOIZE + P.POP + P.POP + P.BINGET + b'\x00' + P.BINGET + b'\x01' + P.STACK_GLOBAL
                    + touch('stack-global') + P.TUPLE1 + P.REDUCE + P.STOP)
    add('stack-global', 'pickle', stack_global,
        'os.system assembled by STACK_GLOBAL from strings fetched out of the memo', 'UNSAFE_PICKLE', "'os.system'", True)
    add('inst-opcode', 'pickle', P.MARK + touch('inst-opcode') + P.INST + b'os\nsystem\n' + P.STOP,
        'protocol-0 INST opcode (import and call in one opcode)', 'UNSAFE_PICKLE', 'opcode 0x69', True)
    add('ext-registry', 'pickle', proto(2) + P.EXT1 + b'\x01' + P.STOP,
        'EXT1: a callable from the copyreg extension registry', 'UNSAFE_PICKLE', 'opcode 0x82', False)
    add('numpy-reconstruct', 'pickle', proto(2) + call(glob('numpy.core.multiarray', '_reconstruct')) + P.STOP,
        'a numpy global (common in pickles, never in a torch state_dict)', 'UNSAFE_PICKLE',
        "'numpy.core.multiarray._reconstruct'", False)

    # Torch archives: payloads inside an otherwise valid checkpoint, and torch.load exploit shapes.
    w = {'0': struct.pack('<4f', 1, 2, 3, 4)}
    buf = io.BytesIO()
    torch.save({'model': OrderedDict([('w', torch.ones(2)),
                                      ('evil', Reduce(os.system, f'touch {marker("state-dict-reduce")}'))])}, buf)
    add('state-dict-reduce', 'checkpoint', buf.getvalue(),
        'torch.save of a state_dict with one value that reduces to os.system', 'UNSAFE_PICKLE', "'posix.system'", True)
    payload_storage = tensor(call(glob('os', 'system'), touch('rebuild-tensor-storage-reduce')), 4)
    add('rebuild-tensor-storage-reduce', 'checkpoint', torch_zip(checkpoint(dict_of((text('w'), payload_storage))), w),
        '_rebuild_tensor_v2 whose storage argument is an os.system REDUCE', 'UNSAFE_PICKLE', "'os.system'", True)
    payload_type = tensor(storage('0', 4, call(glob('os', 'system'), touch('persistent-id-reduce'))), 4)
    add('persistent-id-reduce', 'checkpoint', torch_zip(checkpoint(dict_of((text('w'), payload_type))), w),
        "persistent id ('storage', <os.system REDUCE>, ...) in place of the storage class",
        'UNSAFE_PICKLE', "'os.system'", True)
    add('persistent-id-not-storage', 'checkpoint',
        torch_zip(checkpoint(dict_of((text('w'), tup(text('module'), text('os'), text('system')) + P.BINPERSID)))),
        "a persistent id that is not a ('storage', ...) tuple (the legacy format's module records)",
        'UNSAFE_PICKLE', 'persistent id', False)
    add('storage-not-a-storage', 'checkpoint',
        torch_zip(checkpoint(dict_of((text('w'), tensor(ORDERED_DICT, 4)))), w),
        '_rebuild_tensor_v2 with an allowed but wrong-typed storage argument (an OrderedDict)',
        'BAD_CHECKPOINT', 'not a storage', False)
    hooked = tensor(storage('0', 4), 4, hooks=ORDERED_DICT + integer(0) + text('hook') + P.SETITEM)
    add('backward-hooks', 'checkpoint', torch_zip(checkpoint(dict_of((text('w'), hooked))), w),
        '_rebuild_tensor_v2 with non-empty backward hooks (hooks are callables)', 'UNSAFE_PICKLE', 'backward hooks', False)
    with_state = tensor(storage('0', 4), 4) + dict_of((text('x'), integer(1))) + P.BUILD
    add('build-on-tensor', 'checkpoint', torch_zip(checkpoint(dict_of((text('w'), with_state))), w),
        'BUILD on a tensor (a __setstate__ gadget)', 'UNSAFE_PICKLE', 'BUILD on a tensor', False)
    inner = io.BytesIO()
    torch.save(Reduce(os.system, f'touch {marker("nested-torch-load")}'), inner, _use_new_zipfile_serialization=False)
    inner_bytes = inner.getvalue()
    add('nested-torch-load', 'checkpoint',
        torch_zip(checkpoint(call(glob('torch.storage', '_load_from_bytes'),
                                  P.BINBYTES + struct.pack('<I', len(inner_bytes)) + inner_bytes))),
        'torch.storage._load_from_bytes: a nested torch.load of a legacy pickle carrying os.system',
        'UNSAFE_PICKLE', "'torch.storage._load_from_bytes'", True)
    legacy = io.BytesIO()
    torch.save(Reduce(os.system, f'touch {marker("legacy-format-payload")}'), legacy, _use_new_zipfile_serialization=False)
    add('legacy-format-payload', 'checkpoint', legacy.getvalue(),
        'legacy (pre-1.6) torch.save stream carrying os.system: refused before parsing',
        'BAD_CHECKPOINT', 'legacy', True)

    # Malformed streams: lengths, memo, nesting, truncation.
    add('oversized-binunicode', 'pickle', proto(2) + P.BINUNICODE + struct.pack('<I', 0xFFFFFFF0) + b'abc' + P.STOP,
        'BINUNICODE claiming 4 GiB', 'BAD_CHECKPOINT', 'BINUNICODE needs 4294967280 bytes', False)
    add('oversized-binbytes', 'pickle', proto(3) + P.BINBYTES + struct.pack('<I', 0x7FFFFFFF) + b'abc' + P.STOP,
        'BINBYTES claiming 2 GiB', 'BAD_CHECKPOINT', 'BINBYTES needs 2147483647 bytes', False)
    add('oversized-binunicode8', 'pickle', proto(4) + P.BINUNICODE8 + struct.pack('<Q', 2 ** 63) + b'abc' + P.STOP,
        'BINUNICODE8 claiming 8 EiB', 'BAD_CHECKPOINT', 'BINUNICODE8 needs', False)
    add('huge-memo-index', 'pickle', proto(2) + P.LONG_BINGET + struct.pack('<I', 0xFFFFFFFF) + P.STOP,
        'LONG_BINGET 0xFFFFFFFF (memo index never stored)', 'BAD_CHECKPOINT', 'memo index 4294967295', False)
    add('stack-underflow', 'pickle', proto(2) + P.REDUCE + P.STOP,
        'REDUCE on an empty stack', 'BAD_CHECKPOINT', 'stack underflow', False)
    add('deep-marks', 'pickle', proto(2) + P.MARK * 100_000 + P.STOP,
        '100000 nested MARKs', 'BAD_CHECKPOINT', 'nested MARKs', False)
    add('deep-lists', 'checkpoint',
        torch_zip(checkpoint(P.EMPTY_LIST * 30_000 + P.APPEND * 29_999)),
        '30000 nested lists without MARKs as the model: must not recurse', 'BAD_CHECKPOINT', 'not a tensor', False)
    self_ref = P.EMPTY_DICT + P.BINPUT + b'\x09' + text('w') + P.BINGET + b'\x09' + P.SETITEM
    add('self-referencing-dict', 'checkpoint', torch_zip(checkpoint(self_ref)),
        "a state_dict that contains itself (memo recursion)", 'BAD_CHECKPOINT', "['w'] is a dict", False)
    valid = checkpoint(dict_of((text('w'), tensor(storage('0', 4), 4))))
    add('truncated-stream', 'pickle', valid[:len(valid) * 2 // 3],
        'a valid state_dict pickle cut at two thirds', 'BAD_CHECKPOINT', 'truncated', False)
    add('unknown-opcode', 'pickle', proto(2) + b'\xff' + P.STOP, 'a byte that is no pickle opcode',
        'UNSAFE_PICKLE', 'opcode 0xff', False)

    # Zip container: entries that could not have come from torch.save.
    add('compressed-entry', 'checkpoint', torch_zip(valid, w, compress=zipfile.ZIP_DEFLATED),
        'data.pkl deflate-compressed (torch.save stores entries; compressed entries are zip-bomb material)',
        'BAD_CHECKPOINT', 'compressed', False)
    add('size-lie', 'checkpoint', declare_size(torch_zip(valid, w), 'archive/data/0', 0x7FFFFFFF),
        'a storage entry whose central directory entry declares 2 GiB', 'BAD_CHECKPOINT', 'declares 2147483647 bytes', False)
    whole = torch_zip(valid, w)
    add('truncated-zip', 'checkpoint', whole[:len(whole) - 30],
        'a torch archive missing its last 30 bytes', 'BAD_CHECKPOINT', 'truncated zip', False)


def declare_size(archive, entry, size):
    """Patches the central directory record of `entry` to claim `size` bytes (compressed and not)."""
    data = bytearray(archive)
    at = data.find(b'PK\x01\x02')
    while at >= 0:
        name_len = struct.unpack_from('<H', data, at + 28)[0]
        if data[at + 46:at + 46 + name_len].decode() == entry:
            struct.pack_into('<II', data, at + 20, size, size)
            return bytes(data)
        at = data.find(b'PK\x01\x02', at + 4)
    raise SystemExit(f'{entry} not in archive')


def verify():
    """Loads every file with Python's own loaders in a child process; checks which ones run their payload."""
    entries = json.loads((OUT / 'MANIFEST.json').read_text())
    wrong = []
    for e in entries:
        Path(e['marker']).unlink(missing_ok=True)
        path = OUT / e['file']
        load = ('import pickle,sys; pickle.loads(open(sys.argv[1],"rb").read())' if e['loader'] == 'pickle'
                else 'import torch,sys; torch.load(sys.argv[1])')
        subprocess.run([sys.executable, '-c', load, str(path)], capture_output=True, timeout=60)
        time.sleep(0.3)  # subprocess.Popen payloads finish asynchronously
        ran = Path(e['marker']).exists()
        Path(e['marker']).unlink(missing_ok=True)
        print(f"{e['file']:40s} python runs payload: {ran}")
        if ran != e['executes_in_python']:
            wrong.append(e['file'])
    if wrong:
        raise SystemExit(f'executes_in_python is wrong for: {", ".join(wrong)}')


def main():
    if '--verify' in sys.argv:
        verify()
        return
    OUT.mkdir(parents=True, exist_ok=True)
    for old in [*OUT.glob('*.pkl'), *OUT.glob('*.pth')]:
        old.unlink()
    build()
    (OUT / 'MANIFEST.json').write_text(json.dumps(manifest, indent=1) + '\n')
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f'wrote {len(manifest)} files + MANIFEST.json ({total} bytes) to {OUT}')


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Export a Vim classifier checkpoint to ONNX (fp32, standard ONNX operators only) and check it.

    /usr/bin/python3 tools/export_onnx.py MODEL.pth OUT.onnx [--image-size H] [--stride S] [--scan joint]

What it measures / checks (used by bench/peers.ts, the peer side of the speed benchmark):
  * builds training/vim_model.py's VisionMamba from an official checkpoint ({'model': state_dict}); image size,
    channels, patch and classes come from the checkpoint (patch_embed weight, pos_embed rows), stride = patch
    unless --stride / --image-size say otherwise;
  * sets the model's scan to one written with plain tensor ops (the default 'joint', one unrolled token loop for
    both directions: training/vim_model.py `Mixer.forward_joint` says why; 'ref', the reference loop per direction)
    and exports it with torch.onnx.export, part by part (patch
    embedding, one block, head; `export_stitched` says why) into one graph: opset 17, batch 1, input "input"
    [1, C, H, W], output "logits" [1, classes]. The default ONNX export type refuses anything outside the
    standard operator set, and the written graph goes through the ONNX checker and an operator-domain audit;
  * computes, on one deterministic input (the same formula as `vimedge bench`: 2 sin(12.9898 i)), the logits of
    PyTorch eager fp32 (the model's own CPU scan, what tools/bench_torch.py times), of the rewritten-scan model
    and of the float64 functional reference (tools/vim_reference/), and prints max abs / rel differences;
  * runs the ONNX file with onnxruntime when its Python package is importable (Debian has none) and otherwise
    leaves that comparison to bench/peers.ts (onnxruntime-node), writing what it needs next to OUT.onnx:
    OUT.input.f32 (raw little-endian float32 input) and OUT.check.json (reference logits, config, tolerance).
Relative difference = max|a - b| / max|b|. Exits non-zero when any fp32 comparison exceeds --tol (1e-4).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time

import torch

import peer_model as pm
import vim_reference as ref

FORMAT = 'vimedge-onnx-check'
EXPORT_SCANS = ('joint', 'ref')      # vim_model scans that trace into standard ONNX operators


def diff(a: torch.Tensor, b: torch.Tensor) -> dict:
    a, b = a.double().flatten(), b.double().flatten()
    abs_max = (a - b).abs().max().item()
    return {'max_abs': abs_max, 'max_rel': abs_max / max(b.abs().max().item(), 1e-30),
            'argmax_equal': int(a.argmax()) == int(b.argmax())}


def fmt(d: dict) -> str:
    return f"max abs {d['max_abs']:.3g}, max rel {d['max_rel']:.3g}, top-1 {'same' if d['argmax_equal'] else 'DIFFERS'}"


class _Embed(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, img):
        return self.model.embed(img)                              # [1, L, D]: patches, cls at c, + pos_embed


class _Head(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.norm_f, self.head, self.c = model.norm_f, model.head, model.cfg.cls_index

    def forward(self, x):
        return self.head(self.norm_f(x[:, self.c]))               # [1, classes]


def _need_onnx():
    try:
        import onnx
        return onnx
    except ImportError:
        sys.exit('tools/export_onnx.py needs the onnx Python package: apt-get install python3-onnx '
                 '(scripts/install-test-deps.sh installs it)')


def _export_part(module, example, in_name: str, out_name: str, opset: int, fold: bool):
    onnx = _need_onnx()
    buf = io.BytesIO()
    torch.onnx.export(module, (example,), buf, opset_version=opset, input_names=[in_name], output_names=[out_name],
                      do_constant_folding=fold)
    return onnx.load_from_string(buf.getvalue())


def _rename_graph(graph, prefix: str, keep: dict) -> None:
    """In place: every tensor and node name gets `prefix`, except those in `keep` (old -> new); recursive into
    subgraphs (Loop bodies), whose outer-scope references thus stay consistent."""
    def r(name: str) -> str:
        return name if name == '' else keep.get(name, prefix + name)
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        vi.name = r(vi.name)
    for init in graph.initializer:
        init.name = r(init.name)
    for node in graph.node:
        node.input[:] = [r(n) for n in node.input]
        node.output[:] = [r(n) for n in node.output]
        node.name = prefix + node.name
        for attr in node.attribute:
            if attr.HasField('g'):
                _rename_graph(attr.g, prefix, keep)
            for g in attr.graphs:
                _rename_graph(g, prefix, keep)


def export_stitched(model, x: torch.Tensor, path: str, opset: int) -> None:
    """torch.onnx.export of the patch embedding, of one block and of the head, stitched into one graph with the
    block repeated `depth` times, each copy with its own layer's weights.

    Why not one torch.onnx.export call of the whole model: torch 1.13's exporter (its _jit_pass_onnx) takes time
    quadratic in the graph size; the unrolled scans make ~20k nodes for Vim-Tiny, and the single call needed
    6 minutes for the 50-token model (hours at 197 tokens), against about a second for one block. The block is
    exported without constant folding, so its initializers are exactly the block's 17 parameters, by name
    (mixer.in_proj.weight, ...); each copy gets layer i's tensors under those names. onnxruntime folds the
    weight-only subexpressions (transposes, -exp(A_log), conv tap slices) itself when it loads the model.
    The result is the same function as the whole-model export (the logits check below compares it anyway)."""
    onnx = _need_onnx()
    from onnx import helper, numpy_helper
    cfg = model.cfg
    tokens = torch.zeros(1, cfg.tokens, cfg.embed_dim)
    embed = _export_part(_Embed(model), x, 'input', 'tokens.0', opset, True)
    block = _export_part(model.layers[0], tokens, 'block_in', 'block_out', opset, False)
    head = _export_part(_Head(model), tokens, 'final', 'logits', opset, True)
    nodes, inits = [], []
    _rename_graph(embed.graph, 'embed/', {'input': 'input', 'tokens.0': 'tokens.0'})
    nodes += embed.graph.node
    inits += embed.graph.initializer
    params = [name for name, _ in model.layers[0].named_parameters()]
    for i, layer in enumerate(model.layers):
        g = onnx.GraphProto()
        g.CopyFrom(block.graph)
        weights = dict(layer.named_parameters())
        for init in g.initializer:
            if init.name in weights:
                init.CopyFrom(numpy_helper.from_array(weights[init.name].detach().numpy(), init.name))
        missing = set(params) - {init.name for init in g.initializer}
        if missing:
            raise RuntimeError(f'block export lost parameters {sorted(missing)}: cannot substitute layer weights')
        _rename_graph(g, f'layers.{i}/', {'block_in': f'tokens.{i}', 'block_out': f'tokens.{i + 1}'})
        nodes += g.node
        inits += g.initializer
    _rename_graph(head.graph, 'head/', {'final': f'tokens.{cfg.depth}', 'logits': 'logits'})
    nodes += head.graph.node
    inits += head.graph.initializer
    graph = helper.make_graph(nodes, 'vim', [embed.graph.input[0]], [head.graph.output[0]], initializer=inits)
    m = helper.make_model(graph, opset_imports=block.opset_import, producer_name='vimedge tools/export_onnx.py',
                          producer_version=torch.__version__)
    m.ir_version = block.ir_version
    onnx.save(m, path)


def audit_onnx(path: str) -> dict:
    """Node count (Loop bodies included), operator types and domains; runs the ONNX checker."""
    onnx = _need_onnx()
    m = onnx.load(path, load_external_data=False)
    onnx.checker.check_model(m)
    ops, domains = {}, set()

    def walk(graph):
        for node in graph.node:
            ops[node.op_type] = ops.get(node.op_type, 0) + 1
            domains.add(node.domain or 'ai.onnx')
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    walk(attr.g)
    walk(m.graph)
    opsets = {o.domain or 'ai.onnx': o.version for o in m.opset_import}
    return {'nodes': sum(ops.values()), 'op_types': dict(sorted(ops.items())),
            'domains': sorted(domains), 'opsets': opsets}


def run_onnxruntime_python(path: str, x: torch.Tensor):
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return torch.from_numpy(sess.run(['logits'], {'input': x.numpy()})[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('model', help='checkpoint .pth ({"model": state_dict}, official Vim keys)')
    ap.add_argument('out', help='ONNX file to write')
    ap.add_argument('--image-size', type=int, help='input side H = W (default: from pos_embed and stride = patch)')
    ap.add_argument('--stride', type=int, help='patch stride (default: patch, or what --image-size implies)')
    ap.add_argument('--scan', choices=EXPORT_SCANS, default='joint',
                    help='how the selective scan is written in the graph (default joint, see training/vim_model.py '
                         'Mixer.forward_joint)')
    ap.add_argument('--opset', type=int, default=17)
    ap.add_argument('--tol', type=float, default=1e-4, help='max relative logits difference (default 1e-4)')
    ap.add_argument('--no-f64', action='store_true', help='skip the float64 reference comparison')
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get('VIM_EXPORT_THREADS', '2')))

    sd = ref.load_state_dict(args.model)
    cfg = ref.config_from_state_dict(sd, args.image_size, args.stride)
    model = pm.build_model(sd, cfg, 'chunked')
    info = pm.describe(cfg, model)
    print(f"model {args.model}: {info['in_chans']}x{info['img_size']}x{info['img_size']}, patch {cfg.patch} "
          f"stride {cfg.stride}, {cfg.tokens} tokens, D {cfg.embed_dim}, depth {cfg.depth}, "
          f"{cfg.num_classes} classes, {info['params']:,} parameters", flush=True)
    x = pm.bench_input(cfg)

    checks, failed = {}, []

    def check(name: str, got: torch.Tensor, want: torch.Tensor, gate: bool = True) -> None:
        d = diff(got, want)
        checks[name] = d
        bad = gate and not d['max_rel'] <= args.tol
        print(f'  {name}: {fmt(d)}{"   <-- exceeds " + str(args.tol) if bad else ""}', flush=True)
        if bad:
            failed.append(name)

    with torch.no_grad():
        logits_eager = model(x)[0]                                # the model's own CPU eager path ('chunked')
        model.set_scan(args.scan)
        logits_rewritten = model(x)[0]
        print('PyTorch fp32 checks:')
        check(f'{args.scan}-scan model vs eager fp32', logits_rewritten, logits_eager)
        if not args.no_f64:
            logits64, _ = ref.forward(sd, x[0], cfg.stride, torch.float64)
            check('eager fp32 vs float64 reference (information)', logits_eager, logits64, gate=False)

        t0 = time.time()
        out_dir = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(out_dir, exist_ok=True)
        export_stitched(model, x, args.out, args.opset)
        export_s = time.time() - t0
    onnx_bytes = os.path.getsize(args.out)
    audit = audit_onnx(args.out)
    print(f'exported {args.out}: {onnx_bytes / 2**20:.1f} MiB in {export_s:.1f} s, scan "{args.scan}", '
          f"opset {args.opset}, {audit['nodes']} nodes, domains {audit['domains']}",
          flush=True)
    if audit['domains'] != ['ai.onnx']:
        failed.append('non-standard operator domain')
        print(f"  operators outside the standard domain: {audit['domains']}")

    logits_ort = run_onnxruntime_python(args.out, x)
    if logits_ort is not None:
        print('onnxruntime (Python) check:')
        check('ONNX (onnxruntime) vs PyTorch eager fp32', logits_ort[0], logits_eager)
    else:
        print('onnxruntime has no Python package here: bench/peers.ts checks the ONNX logits with onnxruntime-node')

    base = args.out[:-5] if args.out.endswith('.onnx') else args.out
    input_file = base + '.input.f32'
    with open(input_file, 'wb') as f:
        f.write(x.numpy().astype('<f4').tobytes())
    manifest = {
        'format': FORMAT,
        'checkpoint': os.path.abspath(args.model),
        'checkpoint_bytes': os.path.getsize(args.model),
        'onnx': os.path.abspath(args.out),
        'onnx_bytes': onnx_bytes,
        'config': info,
        'export': {'scan': args.scan, 'opset': args.opset, 'seconds': round(export_s, 2), 'torch': torch.__version__,
                   **{k: audit[k] for k in ('nodes', 'domains', 'op_types')}},
        'input': {'file': os.path.abspath(input_file), 'shape': list(x.shape), 'dtype': 'float32',
                  'formula': '2 * sin(12.9898 * i), float64 rounded to float32'},
        'logits_torch_fp32': logits_eager.tolist(),
        'reference': 'training/vim_model.py VisionMamba, PyTorch eager fp32 on the CPU (scan "chunked")',
        'tolerance_rel': args.tol,
        'relative_difference': 'max|a - b| / max|b|',
        'checks': checks,
        'onnxruntime_python_checked': logits_ort is not None,
    }
    with open(base + '.check.json', 'w') as f:
        json.dump(manifest, f, indent=1)
    if failed:
        print(f'FAILED: {", ".join(failed)} (tolerance {args.tol} relative)', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""PyTorch eager fp32 latency of a Vim checkpoint on the CPU: the PyTorch row of bench/peers.ts.

    /usr/bin/python3 tools/bench_torch.py MODEL.pth [--runs 20] [--warmup 3] [--threads 1] [--image-size H]

What it measures: training/vim_model.py's VisionMamba (the repository's PyTorch model, its own CPU path: shifted
multiply-adds for the depthwise convs, the token-by-token in-place scan of training/scan.py) under
torch.inference_mode(), batch 1, on the synthetic input of `vimedge bench` (2 sin(12.9898 i)), with
torch.set_num_threads(--threads) and OpenBLAS / OpenMP limited to the same count. Debian's torch does its matrix
products through the system BLAS: without libopenblas0-pthread (scripts/install-test-deps.sh) they are ~15x
slower; the BLAS in use is reported.
  cold_start_ms  checkpoint load + model build + first forward (torch's own import is import_ms, not included)
  median_ms, p90_ms  over --runs timed forwards after --warmup untimed ones (the first forward counts as one);
                 percentile q = sorted[min(n - 1, floor(q n))], as src/cli/bench.ts
  peak_rss_mb    the process's peak resident memory (getrusage), torch's import included
  cpu_per_wall   process CPU time / wall time over the timed runs (about the number of busy threads)
Prints one JSON object.
"""
import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


def percentile(sorted_ms, q):
    return sorted_ms[min(len(sorted_ms) - 1, math.floor(q * len(sorted_ms)))]


def blas_library() -> str:
    for d in ('/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib'):
        p = os.path.join(d, 'libblas.so.3')
        if os.path.exists(p):
            return os.path.realpath(p)
    return 'unknown'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description='PyTorch eager fp32 CPU latency of a Vim checkpoint')
    ap.add_argument('model')
    ap.add_argument('--image-size', type=int)
    ap.add_argument('--stride', type=int)
    ap.add_argument('--runs', type=int, default=20)
    ap.add_argument('--warmup', type=int, default=3, help='untimed forwards, the cold one included (default 3)')
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args(argv)
    if args.runs < 1 or args.warmup < 1 or args.threads < 1:
        ap.error('--runs, --warmup and --threads must be >= 1')
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[var] = str(args.threads)                      # read when torch and its BLAS load

    t_import = time.perf_counter()
    import torch
    import peer_model as pm
    import vim_reference as ref
    import_ms = (time.perf_counter() - t_import) * 1e3
    torch.set_num_threads(args.threads)

    with torch.inference_mode():
        t0 = time.perf_counter()
        sd = ref.load_state_dict(args.model)
        cfg = ref.config_from_state_dict(sd, args.image_size, args.stride)
        model = pm.build_model(sd, cfg, 'chunked')
        x = pm.bench_input(cfg)
        t1 = time.perf_counter()
        logits = model(x)
        t2 = time.perf_counter()
        for _ in range(args.warmup - 1):
            model(x)
        times = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(args.runs):
            s = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - s) * 1e3)
        cpu_per_wall = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    times.sort()
    median = percentile(times, 0.5)
    result = {
        'name': 'pytorch-eager-fp32',
        'median_ms': median,
        'p90_ms': percentile(times, 0.9),
        'min_ms': times[0],
        'mean_ms': sum(times) / len(times),
        'images_per_s': 1e3 / median,
        'cold_start_ms': (t2 - t0) * 1e3,
        'load_ms': (t1 - t0) * 1e3,
        'first_forward_ms': (t2 - t1) * 1e3,
        'import_ms': import_ms,
        'runs': args.runs,
        'warmup': args.warmup,
        'threads': torch.get_num_threads(),
        'cpu_per_wall': cpu_per_wall,
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'model_bytes': os.path.getsize(args.model),
        'config': pm.describe(cfg, model),
        'top1': int(logits[0].argmax()),
        'torch': torch.__version__,
        'blas': blas_library(),
        'process_ms': (time.perf_counter() - _T0) * 1e3,
    }
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())

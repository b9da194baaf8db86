"""The Python reference of the Vision Mamba (Vim) classifier: the one place its facts and its math are written.

  config.py   shapes and derived dims (VimConfig), the published variants, the official state-dict key layout,
              reading a checkpoint (MODEL.md §1, §3)
  scan.py     the selective scan as a plain token loop, any dtype: the reference of every faster scan (MODEL.md §2.3)
  model.py    the functional forward pass of one image, MODEL.md §2 literally, with intermediate dumps and a
              self-check of equivalent formulations (float64 agreement to 1e-12)

Imported by training/ (the trainable nn.Module in training/vim_model.py builds on config.py and is tested against
scan.py and model.py), by the fixture generators and by the peers in tools/. tools/ scripts find the package next
to them; training/vim_model.py puts tools/ on sys.path. `/usr/bin/python3 tools/vim_reference` runs the self-check.

Glossary (the spec's names; the same letters are used in code and shapes):
  C      input channels (3 = RGB, 1 = grayscale)
  H, W   input image side (square images: H == W)
  P      patch side (conv kernel);  S  patch stride (16, or 8 for the † models)
  G      patch-grid side = (H - P) // S + 1;  M = G * G patches (token m = gy * G + gx, row-major)
  L      tokens = M + 1 (patches plus one cls token)
  c      index of the cls token = M // 2 ("middle cls token")
  D      embed dim;  E = 2 * D mixer inner dim
  N      SSM state size (16);  R  dt rank = ceil(D / 16);  K  depthwise conv width (4)
  depth  number of blocks (24 for the released models)
  Bsz    batch size (training code), so that B / Bm can name the SSM input matrix
"""
from .config import (RMS_EPS, SOFTPLUS_THRESHOLD, VARIANTS, Tensors, VimConfig, check_state_dict,
                     config_from_state_dict, direction_keys, expected_shapes, load_state_dict, state_dict_shapes)
from .model import SELF_CHECK_TOL, forward, mixer, self_check
from .scan import selective_scan

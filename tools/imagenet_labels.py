"""Writes models/imagenet-labels.txt: the 1000 ImageNet-1k class names, one a line in class-index order, as
torchvision lists them for its pretrained weights (Debian's python3-torchvision, torchvision/models/_meta.py).
`vimedge convert` gives them to a checkpoint with 1000 classes when no --labels file is passed.

    /usr/bin/python3 tools/imagenet_labels.py [OUT]
"""
import sys
from pathlib import Path

from torchvision.models._meta import _IMAGENET_CATEGORIES

out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / 'models/imagenet-labels.txt')
assert len(_IMAGENET_CATEGORIES) == 1000
out.write_text(''.join(f'{name}\n' for name in _IMAGENET_CATEGORIES), encoding='utf-8')
print(f'wrote {out} ({len(_IMAGENET_CATEGORIES)} classes)')

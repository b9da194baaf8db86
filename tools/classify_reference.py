#!/usr/bin/env python3
"""End-to-end reference classification: PIL decode + torchvision eval transform + the float64 forward pass.

    /usr/bin/python3 tools/classify_reference.py MODEL.pth SPEC_JSON IMAGE...

SPEC_JSON is the model's preprocessing as stored in .vimq metadata (resize, crop, interpolation, mean, std,
channels) and `stride`. Prints one JSON line per image: {"file", "logits"} (float64 logits).
The tests compare `vimedge classify --json --logits` against this, image by image.
"""
import json
import sys

import torch
import torchvision.transforms as T
from torchvision.transforms import InterpolationMode
from PIL import Image

import vim_reference as ref


def preprocess(path: str, spec: dict) -> torch.Tensor:
    """hustvl/Vim build_transform(is_train=False) with the given sizes and statistics: [C, H, W] float32."""
    img = Image.open(path).convert('RGB')            # torchvision default_loader
    if spec['channels'] == 1:
        img = img.convert('L')
    interp = InterpolationMode.BICUBIC if spec['interpolation'] == 'bicubic' else InterpolationMode.BILINEAR
    return T.Compose([T.Resize(spec['resize'], interp), T.CenterCrop(spec['crop']), T.ToTensor(),
                      T.Normalize(spec['mean'], spec['std'])])(img)


def main() -> None:
    model, spec_json, images = sys.argv[1], sys.argv[2], sys.argv[3:]
    spec = json.loads(spec_json)
    sd = ref.load_state_dict(model)
    for path in images:
        logits, _ = ref.forward(sd, preprocess(path, spec), stride=spec['stride'], dtype=torch.float64)
        print(json.dumps({'file': path, 'logits': logits.tolist()}))


if __name__ == '__main__':
    main()

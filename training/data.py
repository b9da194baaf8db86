"""Fashion-MNIST in idx format (the four .gz files of the Debian package `dataset-fashion-mnist`).

idx layout (big-endian): magic = 0x00 0x00 <type> <ndim>, type 0x08 = unsigned byte; then ndim uint32 sizes; then
the data, row-major. Labels: magic 0x00000801, [count]. Images: magic 0x00000803, [count, rows, cols].
"""
from __future__ import annotations

import gzip
import os
import struct
from typing import Dict, Tuple

import numpy as np

DEFAULT_DIR = '/usr/share/datasets/fashion-mnist'
LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}
MAGIC_LABELS = 0x00000801
MAGIC_IMAGES = 0x00000803


class DatasetError(ValueError):
    pass


def read_idx(path: str, expect_magic: int) -> np.ndarray:
    """Read one idx file (gzip or raw) into a uint8 array of its declared shape; validates magic and length."""
    with open(path, 'rb') as f:
        raw = f.read()
    if raw[:2] == b'\x1f\x8b':
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as exc:
            raise DatasetError(f'{path}: bad gzip data ({exc})') from None
    if len(raw) < 4:
        raise DatasetError(f'{path}: {len(raw)} bytes, too short for an idx header')
    magic = struct.unpack('>I', raw[:4])[0]
    if magic != expect_magic:
        raise DatasetError(f'{path}: magic 0x{magic:08x}, expected 0x{expect_magic:08x}')
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f'{path}: truncated header')
    dims = struct.unpack(f'>{ndim}I', raw[4:header])
    n = int(np.prod(dims, dtype=np.int64))
    if len(raw) != header + n:
        raise DatasetError(f'{path}: {len(raw) - header} data bytes, dims {list(dims)} need {n}')
    return np.frombuffer(raw, dtype=np.uint8, count=n, offset=header).reshape(dims)


def load_split(split: str, data_dir: str = DEFAULT_DIR) -> Tuple[np.ndarray, np.ndarray]:
    """images uint8 [count, 28, 28], labels uint8 [count]."""
    img_file, lbl_file = FILES[split]
    images = read_idx(os.path.join(data_dir, img_file), MAGIC_IMAGES)
    labels = read_idx(os.path.join(data_dir, lbl_file), MAGIC_LABELS)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f'{data_dir}: {images.shape[0]} {split} images but {labels.shape[0]} labels')
    if labels.size and labels.max() >= len(LABELS):
        raise DatasetError(f'{data_dir}: {split} label {labels.max()} out of range')
    return images, labels


def load_fashion_mnist(data_dir: str = DEFAULT_DIR) -> Dict[str, np.ndarray]:
    if not os.path.isdir(data_dir):
        raise DatasetError(f'{data_dir}: no such directory (apt-get install dataset-fashion-mnist, or copy the '
                           f'four .gz files there)')
    tr_x, tr_y = load_split('train', data_dir)
    te_x, te_y = load_split('test', data_dir)
    return {'train_images': tr_x, 'train_labels': tr_y, 'test_images': te_x, 'test_labels': te_y}


def pixel_mean_std(images: np.ndarray) -> Tuple[float, float]:
    """Mean and (population) std of pixel / 255 over all pixels, in float64."""
    v = images.astype(np.float64) / 255.0
    return float(v.mean()), float(v.std())

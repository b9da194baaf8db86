#!/usr/bin/python3
"""Preprocessing fixtures from the reference: PIL 9.4 + torchvision 0.14 (Debian), run with /usr/bin/python3.

  make_preprocess_fixtures.py           expected outputs -> test/fixtures/generated/image-reference/ (git-ignored)
  make_preprocess_fixtures.py images    rebuild the committed inputs in test/fixtures/images/ from skimage's
                                        sample photos (deterministic; only needed when the set changes)

Expected outputs, per committed image: PIL's convert('RGB') bytes (what the decoder must give) and, per spec,
the uint8 crop after Resize + CenterCrop and the float32 CHW tensor after ToTensor + Normalize. Plus synthetic
random images resized by Pillow directly (the resize kernel on its own) and random colours through
convert('L'). All raw little-endian, described in manifest.json.
"""
import json
import os
import sys
import zlib
import struct

import numpy as np
from PIL import Image
import torchvision.transforms as T
from torchvision.transforms import InterpolationMode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, 'test', 'fixtures', 'images')
OUT = os.path.join(ROOT, 'test', 'fixtures', 'generated', 'image-reference')

# Same fields as PreprocessSpec in src/preprocess/pipeline.ts.
SPECS = {
    # Vim ImageNet evaluation (hustvl/Vim build_transform(is_train=False)).
    'imagenet': dict(resize=256, crop=224, interpolation='bicubic', mean=[0.485, 0.456, 0.406],
                     std=[0.229, 0.224, 0.225], channels=3),
    # Fashion-MNIST style: greyscale, small, bilinear.
    'gray28': dict(resize=28, crop=28, interpolation='bilinear', mean=[0.2860], std=[0.3530], channels=1),
    # Resized image smaller than the crop on its short side: CenterCrop pads with zeros (odd padding, 63).
    'pad161': dict(resize=161, crop=224, interpolation='bicubic', mean=[0.485, 0.456, 0.406],
                   std=[0.229, 0.224, 0.225], channels=3),
}

FILTERS = {'bicubic': Image.BICUBIC, 'bilinear': Image.BILINEAR}


def reference(rgb, spec):
    """torchvision's eval transform on a PIL RGB image: (uint8 HWC crop, float32 CHW tensor)."""
    img = rgb.convert('L') if spec['channels'] == 1 else rgb
    interp = InterpolationMode.BICUBIC if spec['interpolation'] == 'bicubic' else InterpolationMode.BILINEAR
    crop = T.Compose([T.Resize(spec['resize'], interp), T.CenterCrop(spec['crop'])])(img)
    tensor = T.Compose([T.ToTensor(), T.Normalize(spec['mean'], spec['std'])])(crop)
    return np.asarray(crop), tensor.numpy()


def write(name, array):
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder('<')).tobytes())
    return name


def expected_for_images():
    cases = []
    for file in sorted(os.listdir(IMAGES)):
        rgb = Image.open(os.path.join(IMAGES, file)).convert('RGB')
        case = {'file': file, 'width': rgb.width, 'height': rgb.height,
                'rgb': write(file + '.rgb.u8', np.asarray(rgb)), 'specs': {}}
        for spec_name, spec in SPECS.items():
            crop, tensor = reference(rgb, spec)
            case['specs'][spec_name] = {'crop': write(f'{file}.{spec_name}.u8', crop),
                                        'tensor': write(f'{file}.{spec_name}.f32', tensor)}
        cases.append(case)
    return cases


# (in width, in height, out width, out height): up, down, mixed, one axis only, extreme ratios, 1-pixel sides.
RESIZE_SIZES = [
    (1, 1, 7, 5), (37, 23, 224, 224), (300, 200, 341, 256), (517, 389, 256, 192), (1000, 3, 13, 3),
    (3, 1000, 3, 17), (601, 433, 7, 5), (255, 257, 256, 256), (401, 301, 341, 256), (64, 64, 64, 64),
    (150, 100, 451, 97), (2, 999, 1, 1), (29, 31, 28, 28), (800, 600, 28, 21),
]


def expected_for_resize():
    rs = np.random.RandomState(20240611)
    cases = []
    for i, (w, h, ow, oh) in enumerate(RESIZE_SIZES):
        for channels in (1, 3):
            shape = (h, w) if channels == 1 else (h, w, channels)
            # Half the cases are noise, half hard 0/255 edges (bicubic overshoot, so clipping gets exercised).
            pixels = rs.randint(0, 256, shape) if i % 2 == 0 else rs.randint(0, 2, shape) * 255
            img = Image.fromarray(pixels.astype(np.uint8), 'L' if channels == 1 else 'RGB')
            for filt, pil_filter in FILTERS.items():
                name = f'resize_{w}x{h}_to_{ow}x{oh}_c{channels}_{filt}'
                out = np.asarray(img.resize((ow, oh), pil_filter))
                cases.append({'name': name, 'width': w, 'height': h, 'channels': channels, 'outWidth': ow,
                              'outHeight': oh, 'filter': filt, 'input': write(name + '.in.u8', np.asarray(img)),
                              'expected': write(name + '.out.u8', out)})
    return cases


def expected_for_luma():
    """PIL convert('L') on 65536 random colours plus the corners of the RGB cube."""
    rs = np.random.RandomState(601)
    rgb = np.concatenate([np.array([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)]),
                          rs.randint(0, 256, (65536 - 8, 3))]).astype(np.uint8).reshape(256, 256, 3)
    return {'width': 256, 'height': 256, 'input': write('luma.in.u8', rgb),
            'expected': write('luma.out.u8', np.asarray(Image.fromarray(rgb).convert('L')))}


def make_expected():
    os.makedirs(OUT, exist_ok=True)
    manifest = {'specs': SPECS, 'images': expected_for_images(), 'resize': expected_for_resize(),
                'luma': expected_for_luma()}
    with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)


def png16(path, array, colour_type):
    """PIL cannot write 16-bit RGB PNGs; this writes the minimal PNG (IHDR, one IDAT, IEND, filter 0)."""
    h, w = array.shape[:2]
    raw = b''.join(b'\0' + array[y].astype('>u2').tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    ihdr = struct.pack('>IIBBBBB', w, h, 16, colour_type, 0, 0, 0)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(raw, 9)) +
                chunk(b'IEND', b''))


def make_images():
    import skimage.data
    src = os.path.dirname(skimage.data.__file__)
    rs = np.random.RandomState(7)

    def load(name, box=None, size=None):
        img = Image.open(os.path.join(src, name))
        img = img.crop(box) if box else img
        return img.resize(size, Image.LANCZOS) if size else img

    def save(img, file, **kw):
        img.save(os.path.join(IMAGES, file), **kw)

    os.makedirs(IMAGES, exist_ok=True)
    for f in os.listdir(IMAGES):
        os.remove(os.path.join(IMAGES, f))
    jpeg = dict(quality=85)
    # 400x300 -> Resize(256) gives 341x256: left = round(58.5) = 58 (half to even; Math.round says 59).
    save(load('astronaut.png', (0, 64, 512, 448), (400, 300)), 'astronaut_400x300.jpg', **jpeg)
    save(load('chelsea.png'), 'chelsea_451x300.jpg', **jpeg)
    save(load('coffee.png', (150, 0, 417, 400), (233, 349)), 'coffee_portrait_233x349.png')
    save(load('camera.png', (80, 0, 423, 512), (257, 383)), 'camera_grey_257x383.png')
    save(load('camera.png', (0, 0, 512, 505), (301, 297)), 'camera_grey_301x297.jpg', **jpeg)
    # Very long landscape: Resize(256) makes it 1920 wide.
    save(load('hubble_deep_field.jpg', (0, 300, 1000, 433), (900, 120)), 'hubble_900x120.jpg', **jpeg)
    # Progressive, 4:4:4 chroma.
    save(load('retina.jpg', (100, 200, 1300, 1100), (333, 250)), 'retina_444_progressive_333x250.jpg',
         quality=85, subsampling=0, progressive=True)
    # EXIF orientation 6: PIL (and so the model) ignores it; the decoder must too.
    exif = Image.Exif()
    exif[0x0112] = 6
    save(load('astronaut.png', (100, 0, 484, 512), (240, 320)), 'astronaut_exif6_240x320.jpg', exif=exif, **jpeg)
    save(load('coffee.png', size=(180, 120)).convert('CMYK'), 'coffee_cmyk_180x120.jpg', **jpeg)
    # RGBA with varied alpha: convert('RGB') drops alpha, it does not composite.
    rgba = load('astronaut.png', (0, 100, 512, 487), (213, 161)).convert('RGBA')
    alpha = (np.linspace(0, 255, 213)[None, :] * np.ones((161, 1)) + rs.randint(-20, 20, (161, 213))).clip(0, 255)
    rgba.putalpha(Image.fromarray(alpha.astype(np.uint8)))
    save(rgba, 'astronaut_rgba_213x161.png')
    # Palette with a transparent entry; already 256 on its short side, so Resize is a no-op.
    pal = load('coffee.png', (100, 0, 400, 400), (256, 341)).convert('P', palette=Image.ADAPTIVE, colors=64)
    save(pal, 'coffee_palette_256x341.png', transparency=3)
    # 16-bit RGB: PIL keeps the high byte.
    rocket = np.asarray(load('rocket.jpg', (100, 0, 620, 390), (97, 73))).astype(np.uint16) * 257
    png16(os.path.join(IMAGES, 'rocket_rgb16_97x73.png'), rocket + rs.randint(0, 200, rocket.shape).astype(np.uint16), 2)
    # 16-bit grey opens as mode I and convert('RGB') clips it to 0..255 (it does not scale): values above 255
    # saturate, which only a faithful decoder reproduces.
    grey = np.asarray(load('camera.png', size=(90, 70))).astype(np.uint16)
    save(Image.fromarray(np.where(grey > 200, grey * 40, grey).astype(np.uint16)), 'camera_grey16_90x70.png')
    frames = [load('chelsea.png', size=(160, 107)), load('coffee.png', size=(160, 107))]
    frames = [f.convert('P', palette=Image.ADAPTIVE, colors=64) for f in frames]
    frames[0].save(os.path.join(IMAGES, 'chelsea_anim_160x107.gif'), save_all=True, append_images=frames[1:],
                   duration=100, loop=0)
    gif_frame0_offset(load('coffee.png', size=(100, 70)), 'coffee_transparent_offset_120x90.gif', (120, 90), (13, 9))
    save(load('motorcycle_left.png', (200, 100, 450, 300), (50, 40)), 'motorcycle_tiny_50x40.png')
    save(load('motorcycle_left.png', (0, 0, 741, 500), (187, 126)), 'motorcycle_187x126.webp', quality=80)
    save(load('rocket.jpg', size=(130, 87)), 'rocket_130x87.tif', compression='tiff_adobe_deflate')


def gif_frame0_offset(img, file, screen, offset):
    """A GIF whose first frame has a transparent entry and covers only part of the screen; PIL shows the
    transparent entry's colour in both places. PIL always writes frame 0 full-screen, so the header is patched."""
    path = os.path.join(IMAGES, file)
    img.convert('P', palette=Image.ADAPTIVE, colors=32).save(path, transparency=2)
    gif = bytearray(open(path, 'rb').read())
    gif[6:10] = struct.pack('<HH', *screen)
    descriptor = gif.index(b'\x2c', 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0))
    gif[descriptor + 1:descriptor + 5] = struct.pack('<HH', *offset)
    with open(path, 'wb') as f:
        f.write(gif)


if __name__ == '__main__':
    if sys.argv[1:] == ['images']:
        make_images()
    elif not sys.argv[1:]:
        make_expected()
    else:
        sys.exit(__doc__)

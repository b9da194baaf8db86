// Preprocessing vs the reference (PIL 9.4 + torchvision 0.14, tools/make_preprocess_fixtures.py): the resize
// kernel on synthetic images, the whole transform on the committed images, byte for byte.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeImageFile } from '../src/hosts/node-decode.js';
import { pilResize } from '../src/preprocess/pil-resize.js';
import { rgbFromRgba, type RawImage } from '../src/preprocess/raw-image.js';
import {
  cropOffset, normalize, preprocess, resizeAndCrop, resizedSize, toGreyscale, vimEvalSpec, VIM_IMAGENET_SPEC,
} from '../src/preprocess/pipeline.js';
import { IMAGES_DIR, ROOT } from './helpers/hosts.js';
import { difference, loadImageReference, referenceBytes } from './helpers/image-reference.js';
import { rejects } from './helpers/rejects.js';

const manifest = loadImageReference();
const floats = (name: string) => new Float32Array(referenceBytes(name).buffer);
const isJpeg = (file: string) => /\.jpe?g$/i.test(file);

for (const c of manifest.resize) {
  test(`pilResize = Pillow: ${c.name}`, () => {
    const input: RawImage = { width: c.width, height: c.height, channels: c.channels, data: referenceBytes(c.input) };
    const out = pilResize(input, c.outWidth, c.outHeight, c.filter);
    assert.equal([out.width, out.height, out.channels], [c.outWidth, c.outHeight, c.channels]);
    assert.equal(difference(out.data, referenceBytes(c.expected)), { count: 0, max: 0 });
  });
}

test('pilResize to the same size copies', () => {
  const img: RawImage = { width: 2, height: 1, channels: 1, data: new Uint8Array([3, 4]) };
  const out = pilResize(img, 2, 1, 'bicubic');
  assert.equal([...out.data], [3, 4]);
  assert.is.not(out.data, img.data);
});

test('toGreyscale = PIL convert("L") on 65536 colours', () => {
  const { width, height, input, expected } = manifest.luma;
  const grey = toGreyscale({ width, height, channels: 3, data: referenceBytes(input) });
  assert.is(grey.channels, 1);
  assert.equal(difference(grey.data, referenceBytes(expected)), { count: 0, max: 0 });
});

test('resizedSize: shorter side to size, longer truncated, like torchvision Resize(int)', () => {
  assert.equal(resizedSize(400, 300, 256), { width: 341, height: 256 });    // 341.33
  assert.equal(resizedSize(233, 349, 256), { width: 256, height: 383 });    // 383.45
  assert.equal(resizedSize(300, 300, 256), { width: 256, height: 256 });
  assert.equal(resizedSize(900, 120, 256), { width: 1920, height: 256 });
  assert.equal(resizedSize(256, 341, 256), { width: 256, height: 341 });    // unchanged: Resize is a no-op
});

test('cropOffset: Python round (half to even), and torchvision padding when smaller', () => {
  assert.is(cropOffset(341, 224), 58);   // round(58.5) = 58; Math.round would say 59
  assert.is(cropOffset(343, 224), 60);   // round(59.5) = 60
  assert.is(cropOffset(225, 224), 0);    // round(0.5) = 0
  assert.is(cropOffset(227, 224), 2);    // round(1.5) = 2
  assert.is(cropOffset(383, 224), 80);
  assert.is(cropOffset(224, 224), 0);
  assert.is(cropOffset(161, 224), -31);  // pad (224 - 161) // 2 = 31 before, 32 after
});

test('the 400x300 fixture exercises the half-to-even crop: left 59 would not match PIL', () => {
  const im = manifest.images.find((i) => i.file === 'astronaut_400x300.jpg')!;
  const rgb: RawImage = { width: im.width, height: im.height, channels: 3, data: referenceBytes(im.rgb) };
  const resized = pilResize(rgb, 341, 256, 'bicubic');
  const expected = referenceBytes(im.specs.imagenet.crop);
  const cropAt = (left: number) => {
    const out = new Uint8Array(224 * 224 * 3);
    for (let y = 0; y < 224; y++) {
      const from = ((y + 16) * 341 + left) * 3;
      out.set(resized.data.subarray(from, from + 224 * 3), y * 224 * 3);
    }
    return out;
  };
  assert.is(difference(cropAt(58), expected).count, 0);
  assert.ok(difference(cropAt(59), expected).count > 0);
});

// The transform alone, fed PIL's own decoded bytes: exact for every image and spec, the normalised tensor
// included (every step rounds to float32 as torch does; measured max |diff| 0, asserted <= 1e-6).
for (const im of manifest.images) {
  test(`resizeAndCrop + normalize = torchvision on PIL's pixels: ${im.file}`, () => {
    const rgb: RawImage = { width: im.width, height: im.height, channels: 3, data: referenceBytes(im.rgb) };
    for (const [name, spec] of Object.entries(manifest.specs)) {
      const crop = resizeAndCrop(rgb, spec);
      assert.equal([crop.width, crop.height, crop.channels], [spec.crop, spec.crop, spec.channels], name);
      assert.equal(difference(crop.data, referenceBytes(im.specs[name].crop)), { count: 0, max: 0 }, name);
      assert.ok(difference(normalize(crop, spec), floats(im.specs[name].tensor)).max <= 1e-6, name);
    }
  });
}

// End to end from the file: sharp decode + transform. PNG, GIF, TIFF and WebP are exact. For JPEG, sharp 0.35
// decodes with mozjpeg 5.0 and PIL with Debian's libjpeg-turbo 2.1.5, which could round differently; measured
// on the 7 JPEG fixtures (baseline 4:2:0, progressive 4:4:4, greyscale, CMYK, EXIF-tagged) over the 3 specs:
// 0 of 2,112,880 crop bytes differ. Asserted: max |diff| <= 1.
for (const im of manifest.images) {
  test(`decode + preprocess = PIL + torchvision: ${im.file}`, async () => {
    const image = await decodeImageFile(join(IMAGES_DIR, im.file));
    for (const [name, spec] of Object.entries(manifest.specs)) {
      const d = difference(resizeAndCrop(image, spec).data, referenceBytes(im.specs[name].crop));
      if (isJpeg(im.file)) assert.ok(d.max <= 1, `${name}: max |diff| ${d.max}`);
      else assert.equal(d, { count: 0, max: 0 }, name);
    }
  });
}

test('preprocess defaults to the Vim ImageNet spec: 3x224x224 CHW', async () => {
  const image = await decodeImageFile(join(IMAGES_DIR, 'chelsea_451x300.jpg'));
  const x = preprocess(image);
  assert.is(x.length, 3 * 224 * 224);
  assert.equal(preprocess(image, VIM_IMAGENET_SPEC), x);
  // ImageNet normalisation bounds per channel: (0 - mean) / std .. (1 - mean) / std.
  for (let c = 0; c < 3; c++) {
    const plane = x.subarray(c * 224 * 224, (c + 1) * 224 * 224);
    const lo = -VIM_IMAGENET_SPEC.mean[c] / VIM_IMAGENET_SPEC.std[c];
    const hi = (1 - VIM_IMAGENET_SPEC.mean[c]) / VIM_IMAGENET_SPEC.std[c];
    assert.ok(plane.every((v) => v >= lo - 1e-6 && v <= hi + 1e-6));
  }
});

test("Vim's evaluation spec: Resize(int(size / 0.875)), CenterCrop(size), ImageNet or channel-averaged statistics", () => {
  assert.equal(vimEvalSpec(3, 224), { ...VIM_IMAGENET_SPEC });
  assert.equal(VIM_IMAGENET_SPEC, { resize: 256, crop: 224, interpolation: 'bicubic', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channels: 3 });
  assert.equal(vimEvalSpec(1, 28), { resize: 32, crop: 28, interpolation: 'bicubic', mean: [0.449], std: [0.226], channels: 1 });
  assert.is(vimEvalSpec(3, 64).resize, 73);
});

test('RGBA to RGB drops alpha (not composited); shift 8 keeps the high byte of 16-bit samples', () => {
  const rgba = [10, 20, 30, 0, 200, 100, 50, 255];
  assert.equal(rgbFromRgba(2, 1, rgba), { width: 2, height: 1, channels: 3, data: new Uint8Array([10, 20, 30, 200, 100, 50]) });
  assert.equal(rgbFromRgba(1, 1, Uint16Array.from([0x1234, 0xff00, 0x00ff, 0]), 8).data, new Uint8Array([0x12, 0xff, 0x00]));
});

test('greyscale input is replicated for a 3-channel spec, like convert("RGB")', () => {
  const grey: RawImage = { width: 3, height: 2, channels: 1, data: new Uint8Array([0, 50, 100, 150, 200, 250]) };
  const spec = { ...VIM_IMAGENET_SPEC, resize: 2, crop: 2 };
  const rgb: RawImage = { ...grey, channels: 3, data: new Uint8Array([...grey.data].flatMap((v) => [v, v, v])) };
  assert.equal(resizeAndCrop(grey, spec), resizeAndCrop(rgb, spec));
});

test('bad images and specs are refused with a clear error', () => {
  const ok: RawImage = { width: 2, height: 2, channels: 3, data: new Uint8Array(12) };
  rejects(() => preprocess({ ...ok, data: new Uint8Array(11) }), 'BAD_IMAGE', /11 bytes, expected 2x2x3/);
  rejects(() => preprocess({ ...ok, width: 0 }), 'BAD_IMAGE', /0x2/);
  rejects(() => preprocess(ok, { ...VIM_IMAGENET_SPEC, crop: 0 }), 'BAD_ARGUMENT', /crop/);
  rejects(() => preprocess(ok, { ...VIM_IMAGENET_SPEC, resize: 2.5 }), 'BAD_ARGUMENT', /resize/);
  rejects(() => preprocess(ok, { ...VIM_IMAGENET_SPEC, mean: [0.5] }), 'BAD_ARGUMENT', /mean and std/);
  rejects(() => preprocess(ok, { ...VIM_IMAGENET_SPEC, std: [1, 0, 1] }), 'BAD_ARGUMENT', /std/);
  rejects(() => normalize(ok, { ...VIM_IMAGENET_SPEC, channels: 1, mean: [0], std: [1] }), 'BAD_ARGUMENT',
    /3 channels/);
});

test('the preprocessing modules use no host APIs (they run in browsers, Deno and workerd)', () => {
  for (const file of ['src/preprocess/pil-resize.ts', 'src/preprocess/pipeline.ts', 'src/preprocess/raw-image.ts']) {
    const imports = [...readFileSync(join(ROOT, file), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]);
    assert.ok(imports.every((i) => i.startsWith('./') || i === '../errors.js'), `${file}: ${imports}`);
  }
});

test.run();

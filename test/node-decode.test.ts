// The Node decoder vs PIL `Image.open(f).convert('RGB')` (the model's loader), and its refusals.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeImageBytes, decodeImageFile } from '../src/hosts/node-decode.js';
import { IMAGES_DIR } from './helpers/hosts.js';
import { bombPng, pngChunk } from './helpers/png.js';
import { difference, imageFixture, loadImageReference, referenceBytes } from './helpers/image-reference.js';
import { rejects } from './helpers/rejects.js';

const manifest = loadImageReference();
const pilRgb = (file: string) => referenceBytes(manifest.images.find((i) => i.file === file)!.rgb);
const scratch = mkdtempSync(join(tmpdir(), 'vimedge-decode-'));

/** sharp's ordinary RGB path, without this module's PIL-specific handling. */
async function plainSharp(bytes: Uint8Array): Promise<Uint8Array> {
  return sharp(bytes, { ignoreIcc: true }).removeAlpha().toColourspace('srgb').raw().toBuffer();
}

// Every committed image, whatever its kind (JPEG baseline/progressive/greyscale/CMYK/EXIF-rotated, PNG RGB/
// grey/RGBA/palette+tRNS/16-bit RGB/16-bit grey, GIF animated and transparent with an offset first frame, WebP,
// TIFF): the same bytes as PIL. JPEG included: sharp's mozjpeg and PIL's libjpeg-turbo agree on all of them.
for (const im of manifest.images) {
  test(`decodeImageFile = PIL convert('RGB'): ${im.file}`, async () => {
    const out = await decodeImageFile(join(IMAGES_DIR, im.file));
    assert.equal([out.width, out.height, out.channels], [im.width, im.height, 3]);
    assert.is(difference(out.data, pilRgb(im.file)).count, 0);
  });
}

test('decodeImageBytes gives the same as decodeImageFile', async () => {
  const file = 'astronaut_rgba_213x161.png';
  const a = await decodeImageBytes(imageFixture(file), file);
  const b = await decodeImageFile(join(IMAGES_DIR, file));
  assert.equal(a, b);
});

test('EXIF orientation is not applied (PIL does not apply it)', async () => {
  const out = await decodeImageFile(join(IMAGES_DIR, 'astronaut_exif6_240x320.jpg'));
  assert.equal([out.width, out.height], [240, 320]);
});

test('where sharp alone differs from PIL, the special cases are needed', async () => {
  // 16-bit grey is clipped by PIL (sharp scales), CMYK uses PIL's naive formula (sharp colour-manages), a
  // GIF's transparent / uncovered pixels take the palette colour (sharp: black).
  for (const file of ['camera_grey16_90x70.png', 'coffee_cmyk_180x120.jpg', 'coffee_transparent_offset_120x90.gif']) {
    assert.ok(difference(await plainSharp(imageFixture(file)), pilRgb(file)).count > 0, file);
  }
});

/** The PNG with an iCCP chunk (zlib-compressed profile) inserted after IHDR. */
function withIccProfile(png: Uint8Array, icc: Uint8Array): Uint8Array {
  const body = Buffer.concat([Buffer.from('icc\0\0', 'latin1'), deflateSync(icc)]); // name, NUL, method 0
  const afterIhdr = 8 + 25;
  return Buffer.concat([png.subarray(0, afterIhdr), pngChunk('iCCP', body), png.subarray(afterIhdr)]);
}

test('an embedded ICC profile is ignored, as PIL ignores it', async () => {
  const p3 = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } })
    .withIccProfile('p3').png().toBuffer();
  const icc = (await sharp(p3).metadata()).icc!;
  const file = 'coffee_portrait_233x349.png';
  const tagged = withIccProfile(imageFixture(file), icc);
  assert.ok((await sharp(tagged).metadata()).icc, 'profile embedded');
  const out = await decodeImageBytes(tagged, 'tagged.png');
  assert.is(difference(out.data, pilRgb(file)).count, 0);
  // Sanity: sharp's default (colour-managed) decode of the same file does differ.
  const managed = await sharp(tagged).removeAlpha().toColourspace('srgb').raw().toBuffer();
  assert.ok(difference(managed, pilRgb(file)).count > 0);
});

function scratchFile(name: string, bytes: Uint8Array | string): string {
  const path = join(scratch, name);
  writeFileSync(path, bytes);
  return path;
}

test('empty, non-image, truncated and missing files: BAD_IMAGE naming the file', async () => {
  const empty = scratchFile('empty.jpg', '');
  await rejects(decodeImageFile(empty), 'BAD_IMAGE', empty, 'empty file');
  await rejects(decodeImageBytes(new Uint8Array(0), 'upload.png'), 'BAD_IMAGE', /^upload\.png: empty file/);
  const text = scratchFile('notes.png', 'this is not an image\n');
  await rejects(decodeImageFile(text), 'BAD_IMAGE', text, 'not a readable image');
  for (const [file, why] of [['coffee_portrait_233x349.png', 'truncated PNG'], ['chelsea_451x300.jpg', 'cannot decode image']]) {
    const bytes = imageFixture(file);
    const cut = scratchFile(`truncated-${file}`, bytes.subarray(0, bytes.length >> 1));
    await rejects(decodeImageFile(cut), 'BAD_IMAGE', cut, why);
  }
  const missing = join(scratch, 'missing.jpg');
  await rejects(decodeImageFile(missing), 'BAD_IMAGE', missing, 'no such file');
});

test('pixel limit: a decompression bomb is refused from its header, naming the file', async () => {
  const bytes = await bombPng(20000);
  assert.ok(bytes.length < 200_000, `bomb is ${bytes.length} bytes`);
  const bomb = scratchFile('bomb.png', bytes);
  await rejects(decodeImageFile(bomb), 'BAD_IMAGE', bomb, '20000x20000', 'limit of 100000000');
});

test('pixel limit is settable', async () => {
  const file = join(IMAGES_DIR, 'motorcycle_tiny_50x40.png');
  await rejects(decodeImageFile(file, { maxPixels: 1999 }), 'BAD_IMAGE', file, '50x40 = 2000 pixels', 'limit of 1999');
  assert.is((await decodeImageFile(file, { maxPixels: 2000 })).width, 50);
  await rejects(decodeImageFile(file, { maxPixels: 0 }), 'BAD_ARGUMENT', 'maxPixels');
});

test.after(() => rmSync(scratch, { recursive: true, force: true }));

test.run();

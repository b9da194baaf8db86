// The decoder of the hosts without sharp (src/hosts/web-decode.ts: MozJPEG, and the PNG and GIF decoders
// every host shares) against sharp's PIL-matched decoding (src/hosts/node-decode.ts) on every JPEG and PNG
// fixture: PNG must be identical; JPEG is measured (both are libjpeg-turbo code: identical on every fixture so
// far) and allowed 1 level. Plus its refusals: CMYK JPEG, truncated files, over-size images, non-images.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { decodeEncoded } from '../src/hosts/web-decode.js';
import { sniffFormat } from '../src/hosts/image-format.js';
import { decodeImageBytes } from '../src/hosts/node-decode.js';
import { IMAGES_DIR, WEB_DECODERS } from './helpers/hosts.js';
import { imageFixture } from './helpers/image-reference.js';
import { rejects } from './helpers/rejects.js';

const files = readdirSync(IMAGES_DIR).filter((f) => /\.(jpe?g|png|gif|webp)$/.test(f) && !f.includes('cmyk')).sort();

test('PNG identical to sharp, JPEG within 1 level (differing pixels reported)', async () => {
  assert.ok(files.filter((f) => f.endsWith('.png')).length >= 5 && files.filter((f) => f.endsWith('.jpg')).length >= 5);
  const report: string[] = [];
  for (const f of files) {
    const bytes = imageFixture(f);
    const ours = await decodeEncoded(bytes, f, WEB_DECODERS);
    const sharp = await decodeImageBytes(bytes, f);
    assert.equal([ours.width, ours.height, ours.channels], [sharp.width, sharp.height, sharp.channels], f);
    let max = 0;
    let differ = 0;
    for (let i = 0; i < ours.data.length; i++) {
      const d = Math.abs(ours.data[i] - sharp.data[i]);
      if (d) differ++;
      if (d > max) max = d;
    }
    report.push(`${f}: ${differ}/${ours.data.length} values differ, max ${max}`);
    if (!f.endsWith('.jpg')) assert.is(differ, 0, `${f}: must be identical, ${differ} values differ`);
    else assert.ok(max <= 1, `${f}: JPEG differs by ${max} levels`);
  }
  console.log(`  ${report.filter((r) => !r.includes(' 0/')).join('\n  ') || `all ${files.length} files identical to sharp`}`);
});

test('refusals: CMYK JPEG, truncated JPEG and PNG, size limit before decoding, other formats, empty', async () => {
  await rejects(decodeEncoded(imageFixture('coffee_cmyk_180x120.jpg'), 'cmyk.jpg', WEB_DECODERS), 'BAD_IMAGE', /CMYK/);
  const jpeg = imageFixture('astronaut_400x300.jpg');
  await rejects(decodeEncoded(jpeg.subarray(0, jpeg.length >> 1), 'half.jpg', WEB_DECODERS), 'BAD_IMAGE', /cannot decode JPEG.*Premature end/);
  await rejects(decodeEncoded(jpeg.subarray(0, 60), 'header.jpg', WEB_DECODERS), 'BAD_IMAGE', /JPEG/);
  const png = imageFixture('coffee_portrait_233x349.png');
  await rejects(decodeEncoded(png.subarray(0, png.length >> 1), 'half.png', WEB_DECODERS), 'BAD_IMAGE', /truncated PNG/);
  await rejects(decodeEncoded(jpeg, 'big.jpg', WEB_DECODERS, 400 * 300 - 1), 'BAD_IMAGE', /400x300 = 120000 pixels, over the limit of 119999/);
  const tiff = new Uint8Array([0x49, 0x49, 0x2a, 0, 8, 0, 0, 0, 0, 0]);
  await rejects(decodeEncoded(tiff, 'scan.tif', WEB_DECODERS), 'BAD_IMAGE', /^scan\.tif: not a JPEG, PNG, GIF, WebP or BMP image/);
  await rejects(decodeEncoded(new Uint8Array(0), 'empty', WEB_DECODERS), 'BAD_IMAGE', /empty/);
  // A good file still decodes after all those failures (the codec instances are not left broken).
  const again = await decodeEncoded(jpeg, 'again.jpg', WEB_DECODERS);
  const sharp = await decodeImageBytes(jpeg, 'again.jpg');
  assert.equal(again.data, sharp.data);
  assert.is(sniffFormat(png), 'png');
  assert.is(sniffFormat(jpeg), 'jpeg');
});

test.run();

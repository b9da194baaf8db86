// Hostile and unusual images through the Node API (loadClassifier, classify, logits): each one is classified
// or refused with a one-line BAD_IMAGE error, and memory stays bounded by the pixel limit the caller sets.
// test/node-decode.test.ts checks the decoded bytes against PIL and the basic refusals (empty, text,
// truncated, a 20000x20000 bomb, the limit's arithmetic); this file takes the whole classify path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants as zlibConstants, deflateRawSync, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { loadClassifier, VimedgeError, type NodeClassifier } from '../src/index.js';
import { decodeEncoded } from '../src/hosts/web-decode.js';
import { decodeImageBytes } from '../src/hosts/node-decode.js';
import { seededRandom } from '../src/quant/random.js';
import { jpegLayout, gifLayout } from './helpers/fuzz.js';
import { bombPng, headerOnlyPng, ihdr, png, pngChunk } from './helpers/png.js';
import { WEB_DECODERS } from './helpers/hosts.js';
import { imageFixture } from './helpers/image-reference.js';
import { onlyVimedgeErrors, rejects } from './helpers/rejects.js';

const rgbModel = await loadClassifier('test/fixtures/small/small/model.pth');
const greyModel = await loadClassifier('test/fixtures/small/small-gray/model.pth');
const MB = 1 << 20;

async function classified(model: NodeClassifier, bytes: Uint8Array, options = {}) {
  const top = await model.classify(bytes, { topK: 3, ...options });
  const logits = await model.logits(bytes, options);
  assert.is(logits.length, model.info.config.numClasses);
  assert.ok(logits.every(Number.isFinite), 'finite logits');
  assert.is(top.length, 3);
  for (const p of top) assert.type(p.label, 'string');
  assert.is(top[0].index, logits.indexOf(Math.max(...logits)));
  return { top, logits };
}

/** Classifying `bytes` is refused with a BAD_IMAGE error matching `pattern`. */
const refused = (model: NodeClassifier, bytes: Uint8Array, pattern: RegExp, options = {}) =>
  rejects(model.classify(bytes, options), 'BAD_IMAGE', pattern);

/** RSS and ArrayBuffer growth (bytes) while `run` ran. */
async function growth(run: () => Promise<unknown>): Promise<{ rss: number; buffers: number; ms: number }> {
  const before = process.memoryUsage();
  const t0 = performance.now();
  await run();
  const after = process.memoryUsage();
  return { rss: after.rss - before.rss, buffers: after.arrayBuffers - before.arrayBuffers, ms: performance.now() - t0 };
}

// --- building images byte by byte --------------------------------------------------------------------------

function withField(bytes: Uint8Array, at: number, value: number, width: 2 | 4, littleEndian: boolean): Uint8Array<ArrayBuffer> {
  const out = Uint8Array.from(bytes);
  const view = new DataView(out.buffer);
  if (width === 2) view.setUint16(at, value, littleEndian); else view.setUint32(at, value, littleEndian);
  return out;
}

const solid = (width: number, height: number, colour: string) =>
  sharp({ create: { width, height, channels: 3, background: colour } });

// --- decompression bombs and lying headers -----------------------------------------------------------------

test('a 50000x50000 PNG bomb is refused from its header, before any pixel is decoded', async () => {
  const bomb = await bombPng(50_000);
  assert.ok(bomb.length < 400_000, `bomb is ${bomb.length} bytes`);
  const cost = await growth(() => refused(rgbModel, bomb, /image: 50000x50000 = 2500000000 pixels, over the limit of 100000000/));
  assert.ok(cost.rss < 64 * MB && cost.ms < 2000, `refusing cost ${JSON.stringify(cost)}`);
  const header = headerOnlyPng(50_000, 50_000);
  assert.ok(header.length < 200, `header-only bomb is ${header.length} bytes`);
  await refused(rgbModel, header, /50000x50000/);
});

test('JPEG and GIF headers claiming a huge size are refused the same way', async () => {
  const jpeg = imageFixture('chelsea_451x300.jpg');
  const sof = jpegLayout(jpeg).fields.filter((f) => f.name.startsWith('SOF'));
  assert.is(sof.length, 2);
  let huge = jpeg;
  for (const f of sof) huge = withField(huge, f.at, 65_000, 2, false);
  await refused(rgbModel, huge, /65000x65000 = 4225000000 pixels, over the limit/);

  const gif = imageFixture('chelsea_anim_160x107.gif');
  let tall = gif;
  for (const f of gifLayout(gif).fields.filter((f) => /^(screen|frame) (width|height)/.test(f.name))) tall = withField(tall, f.at, 65_535, 2, true);
  await refused(rgbModel, tall, /65535x65535 = 4294836225 pixels, over the limit/);
});

test('the pixel limit is the caller\'s: just over it refused, at it classified', async () => {
  const jpeg = imageFixture('chelsea_451x300.jpg');
  await refused(rgbModel, jpeg, /451x300 = 135300 pixels, over the limit of 135299/, { maxPixels: 135_299 });
  await classified(rgbModel, jpeg, { maxPixels: 135_300 });
  // A 20000x20000 bomb under a 500-megapixel limit would decode (1.2 GB); under the default it never does.
  const bomb = headerOnlyPng(20_000, 20_000);
  await refused(rgbModel, bomb, /over the limit of 100000000/);
  await refused(rgbModel, bomb, /over the limit of 1000000/, { maxPixels: 1_000_000 });
});

test('memory while classifying grows with the pixels allowed, not with what a header claims', async () => {
  // An image at a 4-megapixel limit: decoded (12 MB of RGB), classified; the growth stays within a few bytes
  // per allowed pixel. The same limit refuses a 50-megapixel header at no cost.
  const limit = 4_000_000;
  const atLimit = await solid(2000, 2000, '#3070a0').png().toBuffer();
  const accepted = await growth(() => classified(rgbModel, atLimit, { maxPixels: limit }));
  assert.ok(accepted.rss < 32 * limit + 64 * MB, `at the limit: RSS +${(accepted.rss / MB).toFixed(1)} MB`);
  assert.ok(accepted.buffers < 16 * limit, `at the limit: ArrayBuffers +${(accepted.buffers / MB).toFixed(1)} MB`);
  const over = await growth(() => refused(rgbModel, headerOnlyPng(10_000, 5_000), /over the limit of 4000000/, { maxPixels: limit }));
  assert.ok(over.rss < 16 * MB && over.buffers < MB, `over the limit: ${JSON.stringify(over)}`);
});

// --- degenerate sizes --------------------------------------------------------------------------------------

test('zero-size images are refused: PNG 0xN, JPEG height 0, GIF frame 0x0', async () => {
  await refused(rgbModel, png(ihdr(0, 10)), /image: /);
  await refused(rgbModel, png(ihdr(10, 0)), /image: /);
  const jpeg = imageFixture('chelsea_451x300.jpg');
  const height = jpegLayout(jpeg).fields.find((f) => f.name === 'SOF height')!;
  await refused(rgbModel, withField(jpeg, height.at, 0, 2, false), /image: not a readable image/);
  // A GIF whose screen and frame say 0x0: libvips sizes the frame from its LZW data instead (13x9 here).
  // Either outcome is clean; what matters is no crash and no image of a size nobody checked.
  const gif = imageFixture('coffee_transparent_offset_120x90.gif');
  let empty = gif;
  for (const f of gifLayout(gif).fields.filter((f) => /^(screen|frame) (width|height)/.test(f.name))) empty = withField(empty, f.at, 0, 2, true);
  await onlyVimedgeErrors(classified(rgbModel, empty, { maxPixels: 200 }), 'a 0x0 GIF');
});

test('a 1x1 image is classified (PNG, JPEG, GIF, WebP; RGB and greyscale models)', async () => {
  const one = solid(1, 1, '#c08040');
  for (const bytes of [await one.png().toBuffer(), await one.jpeg().toBuffer(), await one.gif().toBuffer(), await one.webp().toBuffer()]) {
    await classified(rgbModel, bytes);
    await classified(greyModel, bytes);
  }
  // A 1x1 image upscaled to the crop is one colour everywhere: the same as a 64x64 image of that colour.
  const a = await classified(rgbModel, await one.png().toBuffer());
  const b = await classified(rgbModel, await solid(64, 64, '#c08040').png().toBuffer());
  assert.equal(Array.from(a.logits), Array.from(b.logits));
});

test('extreme aspect ratios (1x100000, 100000x1) are classified quickly, in bounded memory', async () => {
  for (const [w, h] of [[1, 100_000], [100_000, 1], [3, 40_000]]) {
    const bytes = await solid(w, h, '#808080').png().toBuffer();
    const cost = await growth(() => classified(rgbModel, bytes));
    // Resizing the whole image (73 x 7.3 million pixels) took 27 s and 1.7 GB; only the crop is resized now.
    assert.ok(cost.ms < 2000 && cost.rss < 64 * MB, `${w}x${h}: ${JSON.stringify(cost)}`);
  }
});

// --- corrupt and unusual encodings -------------------------------------------------------------------------

test('corrupt JPEGs: truncated, damaged entropy data, damaged tables; classified or refused, never thrown otherwise', async () => {
  const jpeg = imageFixture('astronaut_400x300.jpg');
  const layout = jpegLayout(jpeg);
  const sos = Math.max(...layout.boundaries.filter((b) => b < jpeg.length - 2));
  await refused(rgbModel, jpeg.subarray(0, jpeg.length >> 1), /image: cannot decode image/);
  await refused(rgbModel, jpeg.subarray(0, 300), /image: /);
  const random = seededRandom(7);
  let outcomes = { classified: 0, refused: 0 };
  for (let trial = 0; trial < 40; trial++) {
    const bytes = Uint8Array.from(jpeg);
    // Even trials damage the entropy-coded data (libjpeg warns and carries on, as PIL does), odd ones the
    // headers and tables before it.
    const [from, to] = trial % 2 === 0 ? [sos, jpeg.length - 2] : [2, sos];
    for (let k = 0; k < 4; k++) bytes[from + random.int(to - from)] ^= 1 << random.int(8);
    try {
      await classified(rgbModel, bytes);
      outcomes.classified++;
    } catch (e) {
      assert.instance(e, VimedgeError, String(e));
      assert.is((e as VimedgeError).code, 'BAD_IMAGE');
      outcomes.refused++;
    }
  }
  assert.ok(outcomes.classified > 0 && outcomes.refused > 0, JSON.stringify(outcomes));
});

test('an animated GIF is classified on its first frame', async () => {
  const red = await solid(48, 40, '#e02010').png().toBuffer();
  const blue = await solid(48, 40, '#1020e0').png().toBuffer();
  const redThenBlue = await sharp([red, blue], { join: { animated: true } }).gif().toBuffer();
  const blueThenRed = await sharp([blue, red], { join: { animated: true } }).gif().toBuffer();
  assert.is((await sharp(redThenBlue).metadata()).pages, 2);
  const first = await classified(rgbModel, redThenBlue);
  assert.equal(Array.from(first.logits), Array.from((await classified(rgbModel, await sharp(red).gif().toBuffer())).logits));
  assert.not.equal(Array.from(first.logits), Array.from((await classified(rgbModel, blueThenRed)).logits));
  await classified(rgbModel, imageFixture('chelsea_anim_160x107.gif'));
  await classified(rgbModel, imageFixture('coffee_transparent_offset_120x90.gif'));
});

test('a CMYK JPEG is classified (PIL\'s CMYK conversion, test/node-decode.test.ts)', async () => {
  const cmyk = imageFixture('coffee_cmyk_180x120.jpg');
  assert.is((await sharp(cmyk).metadata()).space, 'cmyk');
  await classified(rgbModel, cmyk);
  await classified(greyModel, cmyk);
});

/** A 16-bit RGB PNG of 8-bit RGB pixels: each sample v stored as v * 257 (high byte v, low byte v). */
function rgb16Png(width: number, height: number, rgb: Uint8Array): Uint8Array {
  const stride = 1 + width * 6;
  const rows = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < width * 3; i++) rows.writeUInt16BE(rgb[y * width * 3 + i] * 257, y * stride + 1 + 2 * i);
  }
  return png(ihdr(width, height, 16, 2), pngChunk('IDAT', deflateSync(rows)));
}

test('16-bit PNGs are classified as their high bytes: the same answer as the 8-bit image', async () => {
  const eight = await sharp(imageFixture('coffee_portrait_233x349.png')).removeAlpha().png().toBuffer();
  const raw = await sharp(eight).raw().toBuffer({ resolveWithObject: true });
  const sixteen = rgb16Png(raw.info.width, raw.info.height, raw.data);
  assert.is((await sharp(sixteen).metadata()).depth, 'ushort');
  assert.equal(Array.from((await classified(rgbModel, sixteen)).logits), Array.from((await classified(rgbModel, eight)).logits));
  await classified(rgbModel, imageFixture('rocket_rgb16_97x73.png'));
  await classified(greyModel, imageFixture('camera_grey16_90x70.png'));
});

test('the web decoder (browsers, Deno, workerd) keeps no memory from failed decodes', async () => {
  // jSquash's PNG binding kept one codec instance and every failed decode's allocations in it: 8 bytes per
  // pixel of the claimed size, for good. 200 damaged 500x500 PNGs would keep 400 MB (PNG is now decoded in
  // plain JS, src/hosts/png-decode.ts; the JPEG codec's instance is still wasm).
  const png = new Uint8Array(await solid(500, 500, '#804020').png({ compressionLevel: 0 }).toBuffer());
  const jpeg = new Uint8Array(await solid(500, 500, '#804020').jpeg().toBuffer());
  const good = await decodeEncoded(png, 'good.png', WEB_DECODERS);
  for (const [bytes, type] of [[png, 'png'], [jpeg, 'jpeg']] as const) {
    const cost = await growth(async () => {
      for (let i = 0; i < 200; i++) {
        await rejects(decodeEncoded(bytes.subarray(0, bytes.length >> 1), `damaged.${type}`, WEB_DECODERS), 'BAD_IMAGE');
      }
    });
    assert.ok(cost.rss < 64 * MB, `200 damaged ${type}s: RSS +${(cost.rss / MB).toFixed(0)} MB`);
  }
  // and the decoder still works, with the same pixels
  assert.equal((await decodeEncoded(png, 'good.png', WEB_DECODERS)).data, good.data);
});

test('every committed fixture image is classified by both models', async () => {
  for (const file of ['astronaut_400x300.jpg', 'astronaut_exif6_240x320.jpg', 'astronaut_rgba_213x161.png', 'camera_grey_257x383.png',
    'coffee_palette_256x341.png', 'hubble_900x120.jpg', 'motorcycle_187x126.webp', 'retina_444_progressive_333x250.jpg', 'rocket_130x87.tif']) {
    await classified(rgbModel, imageFixture(file));
    await classified(greyModel, imageFixture(file));
  }
});

// --- every host: the same answer, in bounded time and memory ------------------------------------------------

/** Node's decoder and the web hosts' decoder on the same bytes. */
const BOTH_HOSTS = [
  ['node', (bytes: Uint8Array, options = {}) => decodeImageBytes(bytes, 'file', options)],
  ['web', (bytes: Uint8Array, options: { maxPixels?: number } = {}) => decodeEncoded(bytes, 'file', WEB_DECODERS, options.maxPixels)],
] as const;

/**
 * A zlib stream of `data` followed by `mib` MiB of zeros, built without deflating them all: a fresh raw
 * deflate of 1 MiB of zeros, flushed to a byte boundary, refers only to itself, so it can be repeated.
 */
function zlibWithZeroTail(data: Uint8Array, mib: number): Uint8Array {
  const flushed = (bytes: Uint8Array) => deflateRawSync(bytes, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  const zeros = flushed(new Uint8Array(MB));
  // zlib header, the data, the zeros `mib` times, an empty final block (the checksum is never reached).
  return Buffer.concat([Buffer.from([0x78, 0x01]), flushed(data), ...Array<Buffer>(mib).fill(zeros), Buffer.from([0x03, 0x00, 0, 0, 0, 0])]);
}

test('a 1x1 PNG followed by 8 GiB of deflated zeros: inflating stops when the image is full (all hosts)', async () => {
  // Was: the web decoder (the Rust png crate) inflated the whole tail, 9.7 s of CPU for 7.6 GiB; Pillow and
  // sharp stop. One grey pixel: filter byte 0, value 0x80.
  const file = png(ihdr(1, 1, 8, 0), pngChunk('IDAT', zlibWithZeroTail(new Uint8Array([0, 0x80]), 8192)), pngChunk('IEND', new Uint8Array(0)));
  assert.ok(file.length < 10 * MB, `${file.length} bytes`);
  for (const [host, decode] of BOTH_HOSTS) {
    const cost = await growth(async () => assert.equal(Array.from((await decode(file)).data), [0x80, 0x80, 0x80]));
    // At most one 4 kB slice is inflated past the image (4 MB out); inflating the tail took ~10 s. The time
    // bound leaves room for a shared machine; the memory bound is the tight one.
    assert.ok(cost.ms < 2000 && cost.rss < 32 * MB && cost.buffers < 16 * MB, `${host}: ${JSON.stringify(cost)}`);
  }
});

test('a 4000x4000 PNG decoded five times keeps no memory (web decoder, as in the edge worker)', async () => {
  // Was: the web hosts' PNG codec kept each large decode's wasm memory; workerd grew ~260 MB a request.
  const file = new Uint8Array(await solid(4000, 4000, '#3070a0').png().toBuffer());
  assert.ok(file.length < 300_000, `${file.length} bytes`);
  await decodeEncoded(file, 'big.png', WEB_DECODERS); // first use: codec tables, warm allocator
  const cost = await growth(async () => {
    for (let i = 0; i < 5; i++) assert.is((await decodeEncoded(file, 'big.png', WEB_DECODERS)).data[2], 0xa0);
  });
  assert.ok(cost.rss < 200 * MB, `5 decodes: RSS +${(cost.rss / MB).toFixed(0)} MB (one decode holds ~100 MB)`);
  // Inflating 48 MB takes ~0.3 s on an idle core; the bound leaves room for a shared machine.
  assert.ok(cost.ms < 30_000, `5 decodes: ${cost.ms.toFixed(0)} ms`);
});

test('WebP, GIF and BMP headers over the pixel limit are refused before decoding (all hosts)', async () => {
  // Was: browsers decoded formats other than JPEG/PNG on a canvas, then checked: a 34-byte WebP declaring
  // 12000x12000 decoded for 5-8 s before being refused.
  const side = 12_000 - 1;
  const webp = new Uint8Array([...Buffer.from('RIFF'), 26, 0, 0, 0, ...Buffer.from('WEBPVP8L'), 14, 0, 0, 0, 0x2f,
    side & 0xff, ((side >> 8) & 0x3f) | ((side & 3) << 6), (side >> 2) & 0xff, (side >> 10) & 0xf, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const gif = new Uint8Array([...Buffer.from('GIF89a'), 0xe0, 0x2e, 0xe0, 0x2e, 0, 0, 0, 0x2c, 0, 0, 0, 0, 0xe0, 0x2e, 0xe0, 0x2e, 0, 8, 0]);
  const bmp = new Uint8Array(54);
  bmp.set(Buffer.from('BM'));
  const view = new DataView(bmp.buffer);
  view.setUint32(10, 54, true); view.setUint32(14, 40, true); view.setUint32(18, 12_000, true); view.setUint32(22, 12_000, true);
  view.setUint16(26, 1, true); view.setUint16(28, 24, true);
  for (const [host, decode] of BOTH_HOSTS) {
    for (const [kind, bytes] of [['webp', webp], ['gif', gif], ['bmp', bmp]] as const) {
      const cost = await growth(() => rejects(decode(bytes), 'BAD_IMAGE', /12000x12000 = 144000000 pixels, over the limit of 100000000/));
      // Decoding such a file took 5-8 s; a header check takes well under a millisecond, so 1 s only leaves
      // room for a loaded machine.
      assert.ok(cost.ms < 1000 && cost.rss < 16 * MB, `${host} ${kind}: ${JSON.stringify(cost)}`);
    }
  }
});

test('damaged files get the same answer on every host, as Pillow gives it', async () => {
  // A JPEG whose frame header claims 2000x2000 over 400x400 worth of data: libjpeg warns ("premature end of
  // data segment") and fills with grey; Pillow and sharp decode it, and the web hosts used to refuse it.
  const small = new Uint8Array(await sharp({ create: { width: 400, height: 400, channels: 3, background: '#806040' } }).jpeg().toBuffer());
  const sof = jpegLayout(small).fields.filter((f) => /^SOF (width|height)/.test(f.name));
  let stretched = small;
  for (const f of sof) stretched = withField(stretched, f.at, 2000, 2, false);
  const [node, web] = await Promise.all(BOTH_HOSTS.map(([, decode]) => decode(stretched)));
  assert.equal([node.width, node.height], [2000, 2000]);
  assert.ok(Buffer.from(node.data).equals(Buffer.from(web.data)), 'the stretched JPEG decodes alike');
  // A PNG whose image-data CRC is zeroed: Pillow does not check it (sharp refused it). A zeroed IHDR CRC:
  // Pillow refuses (the web hosts accepted it).
  const good = new Uint8Array(await solid(30, 20, '#204060').png().toBuffer());
  const idat = Buffer.from(good).indexOf('IDAT');
  const badDataCrc = Uint8Array.from(good);
  badDataCrc.fill(0, idat + 4 + new DataView(good.buffer).getUint32(idat - 4), idat + 8 + new DataView(good.buffer).getUint32(idat - 4));
  const badHeaderCrc = Uint8Array.from(good);
  badHeaderCrc.fill(0, 29, 33);
  for (const [host, decode] of BOTH_HOSTS) {
    assert.equal((await decode(badDataCrc)).data, (await decode(good)).data, `${host}: a zeroed IDAT CRC`);
    await rejects(decode(badHeaderCrc), 'BAD_IMAGE', /bad checksum in the IHDR chunk/);
  }
});

test.run();

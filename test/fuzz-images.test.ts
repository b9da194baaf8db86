// Property-based fuzzing of image decoding (decodeImageBytes: sharp/libvips plus the PIL-matching code
// around it) and of the preprocessing that follows. Mutations of real PNG, JPEG, GIF, WebP and TIFF files aim
// at their structure: PNG chunk lengths and IHDR sizes, JPEG segment lengths and frame sizes, GIF screen,
// frame and sub-block sizes, truncation at every section boundary. Property: a decoded image no larger than
// the pixel limit, that then classifies, or a one-line BAD_IMAGE; never another exception, a hang, or memory
// beyond what the limit allows.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { decodeImageBytes, type DecodedImage } from '../src/hosts/node-decode.js';
import { decodeEncoded } from '../src/hosts/web-decode.js';
import { loadClassifier } from '../src/index.js';
import { pilResize } from '../src/preprocess/pil-resize.js';
import type { RawImage } from '../src/preprocess/raw-image.js';
import { cropOffset, resizeAndCrop, resizedSize, type PreprocessSpec } from '../src/preprocess/pipeline.js';
import { seededRandom } from '../src/quant/random.js';
import {
  expectClean, expectCleanAsync, fcOptions, fuzzRuns, gifLayout, invalid, jpegLayout, mutate, pngLayout,
  seedMutationsArb, Tally, truncationPoints, type Layout,
} from './helpers/fuzz.js';
import { WEB_DECODERS } from './helpers/hosts.js';
import { imageFixture } from './helpers/image-reference.js';

const tally = new Tally('images');
const MAX_PIXELS = 1 << 20;
const classifier = await loadClassifier('test/fixtures/small/small/model.pth');
const BUDGET = { structure: 400, web: 250, preprocess: 150 };
const TOTAL = BUDGET.structure + BUDGET.web + BUDGET.preprocess;

const anyLayout = (bytes: Uint8Array): Layout => ({
  boundaries: [0, 4, 8, 12, 16, 32, bytes.length >> 1, bytes.length - 2, bytes.length], fields: [],
});

const FIXTURES = ([
  ['motorcycle_tiny_50x40.png', pngLayout],
  ['rocket_rgb16_97x73.png', pngLayout],
  ['camera_grey16_90x70.png', pngLayout],
  ['astronaut_rgba_213x161.png', pngLayout],
  ['coffee_cmyk_180x120.jpg', jpegLayout],
  ['retina_444_progressive_333x250.jpg', jpegLayout],
  ['camera_grey_301x297.jpg', jpegLayout],
  ['chelsea_anim_160x107.gif', gifLayout],
  ['coffee_transparent_offset_120x90.gif', gifLayout],
  ['motorcycle_187x126.webp', anyLayout],
  ['rocket_130x87.tif', anyLayout],
] as const).map(([file, layoutOf]) => {
  const bytes = imageFixture(file);
  return { file, bytes, layout: layoutOf(bytes) };
});

async function validImage(image: DecodedImage): Promise<void> {
  const { width, height, channels, data } = image;
  if (!(Number.isSafeInteger(width) && Number.isSafeInteger(height) && width > 0 && height > 0)) invalid(`size ${width}x${height}`);
  if (width * height > MAX_PIXELS) invalid(`${width}x${height} is over the ${MAX_PIXELS}-pixel limit`);
  if (channels !== 3 || !(data instanceof Uint8Array) || data.length !== width * height * 3) invalid(`${data?.length} bytes for ${width}x${height}x${channels}`);
  // What is decoded must classify: preprocessing and the kernels take any size.
  const logits = await classifier.logits(image);
  if (logits.length !== 10 || !logits.every(Number.isFinite)) invalid(`logits ${Array.from(logits)}`);
}

// Memory: what the limit allows (an RGBA frame, its RGB copy, libvips line buffers) plus the input.
const BOUND = { factor: 64, constant: 16 * MAX_PIXELS + (16 << 20), rssSlack: 96 << 20 };

const decode = (bytes: Uint8Array) => () => decodeImageBytes(bytes, 'fuzz-image', { maxPixels: MAX_PIXELS });

test('truncation at every section boundary', async () => {
  for (const { file, bytes, layout } of FIXTURES) {
    for (const at of truncationPoints({ bytes, layout })) {
      await expectCleanAsync(tally, `${file} truncated at ${at}`, at, decode(bytes.subarray(0, at)), validImage, BOUND);
    }
  }
});

test('structure: chunk and segment lengths, image sizes, bit flips, insertions, deletions', async () => {
  await fc.assert(fc.asyncProperty(
    seedMutationsArb(FIXTURES, 3),
    async (drawn) => {
      const { which, bytes, description } = mutate(FIXTURES, drawn);
      await expectCleanAsync(tally, `${FIXTURES[which].file}: ${description}`, bytes.length, decode(bytes), validImage, BOUND);
    }), fcOptions(fuzzRuns(BUDGET.structure, TOTAL)));
});

// --- the decoder of the hosts without sharp (browsers, Deno, workerd): jSquash's MozJPEG and Rust png ------

const WEB_FIXTURES = FIXTURES.filter((f) => /\.(png|jpg)$/.test(f.file) && !f.file.includes('cmyk'));

test('web decoder (browsers, Deno, workerd): the same mutations of the PNG and JPEG fixtures', async () => {
  // Memory kept by failed decodes accumulates across cases, each under the per-case bound: that is tested
  // on its own, with images large enough to show it, in test/images-hostile.test.ts.
  await fc.assert(fc.asyncProperty(
    seedMutationsArb(WEB_FIXTURES, 3),
    async (drawn) => {
      const { which, bytes, description } = mutate(WEB_FIXTURES, drawn);
      await expectCleanAsync(tally, `web ${WEB_FIXTURES[which].file}: ${description}`, bytes.length,
        () => decodeEncoded(bytes, 'fuzz-image', WEB_DECODERS, MAX_PIXELS), (image) => validImage({ ...image, channels: 3 } as DecodedImage), BOUND);
    }), fcOptions(fuzzRuns(BUDGET.web, TOTAL)));
});

// --- preprocessing: any image size, any resize and crop, bounded by the crop -------------------------------

/** The crop of the full resize, computed the long way: what resizeAndCrop must equal (PIL + torchvision). */
function cropOfFullResize(image: RawImage, spec: PreprocessSpec): Uint8Array {
  const size = resizedSize(image.width, image.height, spec.resize);
  const full = pilResize(image, size.width, size.height, spec.interpolation);
  const left = cropOffset(size.width, spec.crop), top = cropOffset(size.height, spec.crop);
  const out = new Uint8Array(spec.crop * spec.crop * image.channels);
  for (let y = 0; y < spec.crop; y++) {
    for (let x = 0; x < spec.crop; x++) {
      const sx = x + left, sy = y + top;
      if (sx < 0 || sy < 0 || sx >= full.width || sy >= full.height) continue;
      for (let c = 0; c < image.channels; c++) out[(y * spec.crop + x) * image.channels + c] = full.data[(sy * full.width + sx) * image.channels + c];
    }
  }
  return out;
}

test('preprocessing: resizing only the cropped region gives the bytes of the full resize, for any size', () => {
  const imageArb = fc.record({ width: fc.integer({ min: 1, max: 80 }), height: fc.integer({ min: 1, max: 80 }), seed: fc.nat() });
  const specArb = fc.record({
    resize: fc.integer({ min: 1, max: 96 }), crop: fc.integer({ min: 1, max: 72 }),
    interpolation: fc.constantFrom('bicubic' as const, 'bilinear' as const),
  });
  fc.assert(fc.property(imageArb, specArb, ({ width, height, seed }, s) => {
    const random = seededRandom(seed);
    const data = new Uint8Array(width * height * 3).map(() => random.int(256));
    const image: RawImage = { width, height, channels: 3, data };
    const spec: PreprocessSpec = { ...s, mean: [0, 0, 0], std: [1, 1, 1], channels: 3 };
    expectClean(tally, `preprocess ${width}x${height} ${JSON.stringify(s)}`, data.length, () => resizeAndCrop(image, spec), (crop) => {
      if (crop.width !== spec.crop || crop.height !== spec.crop) invalid(`crop ${crop.width}x${crop.height}`);
      const want = cropOfFullResize(image, spec);
      if (!want.every((v, i) => v === crop.data[i])) invalid('differs from the crop of the full resize');
    });
  }), fcOptions(fuzzRuns(BUDGET.preprocess, TOTAL)));
});

test('the unmutated fixtures decode and classify (the fuzz starts from valid files)', async () => {
  for (const { bytes } of FIXTURES) await validImage(await decodeImageBytes(bytes, 'ok', { maxPixels: MAX_PIXELS }));
  assert.ok(true);
});

test.after(() => tally.report());

test.run();

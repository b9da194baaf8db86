// Every file of the public image corpus (Pillow's Tests/images subset and the PngSuite, ~888 files; kept
// outside the repository in ../shared/image-corpus, or $VIMEDGE_IMAGE_CORPUS) through every host's decoder,
// against Debian's Pillow 9.4 `Image.open(f).convert('RGB')` (tools/make_corpus_reference.py, cached in
// test/fixtures/generated/). A file PIL opens must decode to PIL's bytes, unless the host documents that it
// cannot read that kind of file (docs/API.md, "Decoding"); a file PIL refuses must get the same answer on
// every host, so that hosts never disagree on a damaged file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { decodeImageBytes } from '../src/hosts/node-decode.js';
import { decodeEncoded } from '../src/hosts/web-decode.js';
import { VimedgeError } from '../src/errors.js';
import type { RawImage } from '../src/preprocess/raw-image.js';
import { ROOT, WEB_DECODERS } from './helpers/hosts.js';

const CORPUS = process.env.VIMEDGE_IMAGE_CORPUS ?? join(ROOT, '..', 'shared', 'image-corpus');
const SCRIPT = join(ROOT, 'tools/make_corpus_reference.py');
const REFERENCE = join(ROOT, 'test/fixtures/generated/image-corpus.json');

interface Reference {
  width?: number; height?: number; format?: string; mode?: string; sha256?: string;
  overLimit?: boolean;
  refused?: string;
}

function loadReference(): Record<string, Reference> {
  const manifest = join(CORPUS, 'manifest.json');
  assert.ok(existsSync(manifest), `the image corpus is missing: ${CORPUS} (set VIMEDGE_IMAGE_CORPUS)`);
  const stale = !existsSync(REFERENCE) || [SCRIPT, manifest].some((f) => statSync(f).mtimeMs > statSync(REFERENCE).mtimeMs);
  if (stale) {
    mkdirSync(dirname(REFERENCE), { recursive: true });
    const run = spawnSync('/usr/bin/python3', [SCRIPT, CORPUS, REFERENCE], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`${SCRIPT} failed: ${run.stderr ?? run.error}`);
  }
  return JSON.parse(readFileSync(REFERENCE, 'utf8')).files;
}

interface Host {
  decode(bytes: Uint8Array, name: string): Promise<RawImage>;
  /** What the host documents it cannot decode (docs/API.md), by PIL's format and mode and the refusal. */
  cannotRead(ref: Reference, message: string): boolean;
}

const HOSTS: Record<string, Host> = {
  node: {
    decode: (bytes, name) => decodeImageBytes(bytes, name),
    // libvips' TIFF loader: no CIELAB, old-style JPEG, LZMA, tiled separate planes, 12-bit or float samples.
    cannotRead: (ref, message) => ref.format === 'TIFF'
      && /labq|Old-style JPEG|LZMA|tiled separate planes|samples_per_pixel not a whole number|required field 262/.test(message),
  },
  web: {
    decode: (bytes, name) => decodeEncoded(bytes, name, WEB_DECODERS),
    cannotRead: (ref, message) => (ref.format === 'JPEG' && ref.mode === 'CMYK' && /CMYK/.test(message))
      || (ref.format === 'WEBP' && /animated WebP is not supported/.test(message))
      || /not a JPEG, PNG, GIF, WebP or BMP/.test(message),
  },
};

/**
 * Files whose decoded bytes differ from PIL's on a host, with the reason; each is a known, documented
 * defect (docs/API.md), listed so that any other difference fails.
 */
const KNOWN_DIFFERENCES: Record<string, string[]> = {
  // Corrupt entropy-coded data: MozJPEG (jSquash's build) recovers differently from Debian's libjpeg-turbo.
  'pillow/Tests/images/hopper_bad_exif.jpg': ['web'],
};

type Verdict = { sha256: string } | { refused: string };

async function verdict(host: Host, bytes: Uint8Array, file: string): Promise<Verdict> {
  try {
    const image = await host.decode(bytes, file);
    return { sha256: createHash('sha256').update(image.data).digest('hex') };
  } catch (err) {
    if (!(err instanceof VimedgeError)) throw err; // a crash, not a refusal
    return { refused: err.message };
  }
}

test('every host decodes every corpus file PIL opens to PIL\'s bytes; files PIL refuses get one answer', async () => {
  const reference = loadReference();
  const files = Object.keys(reference);
  assert.ok(files.length > 800, `${files.length} corpus files`);
  const problems: string[] = [];
  const counts: Record<string, Record<string, number>> = {};
  for (const file of files) {
    const ref = reference[file];
    const bytes = new Uint8Array(readFileSync(join(CORPUS, file)));
    const verdicts: Record<string, Verdict> = {};
    for (const [hostName, host] of Object.entries(HOSTS)) {
      const got = verdicts[hostName] = await verdict(host, bytes, file);
      let outcome: string;
      if (ref.refused !== undefined) {
        outcome = 'refused' in got ? 'both refuse' : 'PIL refuses, host decodes';
      } else if (ref.overLimit) {
        outcome = 'refused' in got && (/over the limit/.test(got.refused) || host.cannotRead(ref, got.refused)) ? 'over the pixel limit' : 'PROBLEM';
        if (outcome === 'PROBLEM') problems.push(`${hostName} ${file}: over the pixel limit but not refused as such`);
      } else if ('refused' in got) {
        outcome = host.cannotRead(ref, got.refused) ? 'documented refusal' : 'PROBLEM';
        if (outcome === 'PROBLEM') problems.push(`${hostName} ${file} (${ref.format} ${ref.mode}): refused: ${got.refused}`);
      } else if (got.sha256 === ref.sha256) {
        outcome = 'identical';
      } else {
        outcome = KNOWN_DIFFERENCES[file]?.includes(hostName) ? 'known difference' : 'PROBLEM';
        if (outcome === 'PROBLEM') problems.push(`${hostName} ${file} (${ref.format} ${ref.mode}): pixels differ from PIL's`);
      }
      (counts[hostName] ??= {})[outcome] = (counts[hostName][outcome] ?? 0) + 1;
    }
    if (ref.refused !== undefined) {
      const answers = new Set(Object.entries(verdicts).filter(([h, v]) => !('refused' in v && HOSTS[h].cannotRead(ref, v.refused)))
        .map(([, v]) => 'refused' in v ? 'refused' : v.sha256));
      if (answers.size > 1) problems.push(`${file}: PIL refuses it (${ref.refused}); the hosts disagree: ${JSON.stringify(verdicts)}`);
    }
  }
  for (const [host, c] of Object.entries(counts)) console.log(`  ${host}: ${JSON.stringify(c)}`);
  assert.equal(problems, [], problems.join('\n'));
});

test.run();

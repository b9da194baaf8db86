// Every file of the public image corpus (Pillow's Tests/images subset and the PngSuite, ~888 files; kept
// outside the repository in ../shared/image-corpus, or $VIMEDGE_IMAGE_CORPUS) through every host's decoder,
// against Debian's Pillow 9.4 `Image.open(f).convert('RGB')` (tools/make_corpus_reference.py, cached in
// test/fixtures/generated/): Node (sharp), the web hosts' decoders run by Node, the browser build
// (dist/browser/vimedge.js, its `decodeImage`) in Deno and in headless Chromium, and the worker build in
// workerd, all files in one process, page or isolate. A file PIL opens must decode to PIL's bytes, unless the host documents that it cannot read that kind
// of file (docs/API.md, "Decoding"); a file PIL refuses must get the same answer on every host, so that hosts
// never disagree on a damaged file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { decodeImageBytes } from '../src/hosts/node-decode.js';
import { decodeEncoded } from '../src/hosts/web-decode.js';
import { VimedgeError } from '../src/errors.js';
import type { RawImage } from '../src/preprocess/raw-image.js';
import { ROOT, WEB_DECODERS, denoBinary, ensureBuilt, chromiumContext, serveWorkerd } from './helpers/hosts.js';

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

/** What a host made of a file: the SHA-256 of its RGB bytes, a refusal (a VimedgeError), or a crash. */
type Verdict = { sha256: string } | { refused: string } | { crashed: string };
type Verdicts = Record<string, Verdict>;

/**
 * A refusal a host documents: docs/API.md's format table, the row whose label starts with `row`, in the
 * host's column, says "refused" and quotes (where it quotes) a text `message` matches.
 */
interface Documented {
  row: string;
  /** The files of that row, by what PIL makes of them (format and mode; none for files PIL refuses). */
  covers(ref: Reference): boolean;
  message: RegExp;
}

interface Host {
  /** The verdict on every file, in one batch. */
  verdicts(files: string[]): Promise<Verdicts>;
  /** The host's column of the format table. */
  column: string;
  documented: Documented[];
}

const cannotRead = (host: Host, ref: Reference, message: string) => host.documented.some((d) => d.covers(ref) && d.message.test(message));

const tmp = mkdtempSync(join(tmpdir(), 'vimedge-corpus-'));

/** A decoder run in this process, file by file. */
function inProcess(decode: (bytes: Uint8Array, name: string) => Promise<RawImage>): Host['verdicts'] {
  return async (files) => {
    const verdicts: Verdicts = {};
    for (const file of files) {
      try {
        const image = await decode(new Uint8Array(readFileSync(join(CORPUS, file))), file);
        verdicts[file] = { sha256: createHash('sha256').update(image.data).digest('hex') };
      } catch (err) {
        verdicts[file] = err instanceof VimedgeError ? { refused: err.message } : { crashed: String((err as Error)?.stack ?? err) };
      }
    }
    return verdicts;
  };
}

const BUNDLE = 'dist/browser/vimedge.js';
const VERDICTS_SCRIPT = 'test/helpers/corpus-verdicts.js';

/** The browser build in Deno: one process, reading the corpus with --allow-read of it (and of the build). */
async function denoVerdicts(files: string[]): Promise<Verdicts> {
  const env = { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_DIR: join(tmp, 'deno-cache') };
  const args = ['run', '--no-prompt', `--allow-read=${CORPUS},${join(ROOT, 'dist/browser')}`, VERDICTS_SCRIPT, BUNDLE, CORPUS];
  const r = spawnSync(denoBinary(), args, { cwd: ROOT, env, input: JSON.stringify(files), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`deno failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The browser build in headless Chromium: one page, the corpus served next to the repository. */
async function chromiumVerdicts(files: string[]): Promise<Verdicts> {
  const { serve } = await import(join(ROOT, 'examples/browser/serve.mjs'));
  const at = (file: string) => new URL(`/corpus/${file}`, 'http://localhost').pathname; // as the page's fetch encodes it
  const server = await serve({ files: Object.fromEntries(files.map((f) => [at(f), join(CORPUS, f)])) });
  const context = await chromiumContext(join(tmp, 'chromium'));
  try {
    const page = context.pages()[0] ?? await context.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/${VERDICTS_SCRIPT}`);
    // A string, not a function: tsx's transform would add helpers (__name) that do not exist in the page.
    return await page.evaluate(`(async () => {
      const { corpusVerdicts } = await import('/${VERDICTS_SCRIPT}');
      const build = await import('/${BUNDLE}');
      const read = async (file) => new Uint8Array(await (await fetch('/corpus/' + file)).arrayBuffer());
      return corpusVerdicts(build, ${JSON.stringify(files)}, read);
    })()`) as Verdicts;
  } finally {
    await context.close();
    server.close();
  }
}

/** The worker build (dist/worker/vimedge.js) in workerd: one isolate, each file POSTed to it. */
async function workerdVerdicts(files: string[]): Promise<Verdicts> {
  const dir = join(tmp, 'workerd');
  cpSync(join(ROOT, 'dist/worker'), dir, { recursive: true });
  cpSync(join(ROOT, VERDICTS_SCRIPT), join(dir, 'corpus-verdicts.js'));
  writeFileSync(join(dir, 'worker.js'), `import { decodeImage, VimedgeError } from './vimedge.js';
import { corpusVerdicts } from './corpus-verdicts.js';
export default {
  async fetch(request) {
    const bytes = new Uint8Array(await request.arrayBuffer());
    const { file } = await corpusVerdicts({ decodeImage, VimedgeError }, ['file'], async () => bytes);
    return Response.json(file);
  },
};
`);
  const modules = ['worker.js', 'corpus-verdicts.js', 'vimedge.js'].map((m) => `(name = "${m}", esModule = embed "${m}")`)
    .concat(['vimedge.wasm', 'mozjpeg_dec.wasm', 'webp_dec.wasm'].map((m) => `(name = "${m}", wasm = embed "${m}")`));
  writeFileSync(join(dir, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "decode", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "decode") ],
);
const worker :Workerd.Worker = (modules = [ ${modules.join(', ')} ], compatibilityDate = "2025-01-01");
`);
  const { url, proc, log } = await serveWorkerd(dir);
  try {
    const verdicts: Verdicts = {};
    for (const file of files) {
      const res = await fetch(url, { method: 'POST', body: readFileSync(join(CORPUS, file)) });
      verdicts[file] = res.ok ? await res.json() as Verdict : { crashed: `HTTP ${res.status}: ${await res.text()} ${log()}` };
    }
    return verdicts;
  } finally {
    proc.kill('SIGKILL');
  }
}

const FIVE = new Set(['PNG', 'GIF', 'BMP', 'JPEG', 'MPO', 'WEBP']); // MPO: a JPEG with more frames
const otherFormat = (ref: Reference) => ref.format === undefined || !FIVE.has(ref.format);

/** What the hosts without sharp refuse: CMYK JPEG, animated WebP, and every format but their five. */
const WEB_REFUSALS: Documented[] = [
  { row: 'JPEG, CMYK', covers: (ref) => ref.format === 'JPEG' && ref.mode === 'CMYK', message: /4-component \(CMYK\/YCCK\) JPEG is not supported on this host/ },
  { row: 'WebP, animated', covers: (ref) => ref.format === 'WEBP', message: /animated WebP is not supported on this host/ },
  { row: 'TIFF', covers: (ref) => ref.format === 'TIFF', message: /not a JPEG, PNG, GIF, WebP or BMP image/ },
  { row: 'anything else', covers: otherFormat, message: /not a JPEG, PNG, GIF, WebP or BMP image/ },
];

const HOSTS: Record<string, Host> = {
  node: {
    verdicts: inProcess((bytes, name) => decodeImageBytes(bytes, name)),
    column: 'Node',
    // libvips' TIFF loader: no CIELAB, old-style JPEG, LZMA, tiled separate planes, 12-bit or float samples.
    documented: [{
      row: 'TIFF', covers: (ref) => ref.format === 'TIFF',
      message: /labq|Old-style JPEG|LZMA|tiled separate planes|samples_per_pixel not a whole number|required field 262/,
    }],
  },
  web: { verdicts: inProcess((bytes, name) => decodeEncoded(bytes, name, WEB_DECODERS)), column: 'Deno, workerd', documented: WEB_REFUSALS },
  deno: { verdicts: denoVerdicts, column: 'Deno, workerd', documented: WEB_REFUSALS },
  workerd: { verdicts: workerdVerdicts, column: 'Deno, workerd', documented: WEB_REFUSALS },
  // Formats the build's decoders do not read go to Chromium's own (createImageBitmap), which reads no TIFF.
  chromium: {
    verdicts: chromiumVerdicts,
    column: 'browsers',
    documented: [
      ...WEB_REFUSALS.filter((d) => d.row.startsWith('JPEG') || d.row.startsWith('WebP')),
      { row: 'TIFF', covers: (ref) => ref.format === 'TIFF', message: /not a readable image/ },
      { row: 'anything else', covers: otherFormat, message: /not a readable image/ },
    ],
  },
};

/** docs/API.md's format table (section "Decoding"): row label -> column -> cell, "same" resolved to the cell before. */
function formatTable(): Map<string, Record<string, string>> {
  const doc = readFileSync(join(ROOT, 'docs/API.md'), 'utf8');
  const lines = doc.slice(doc.indexOf('## Decoding')).split('\n').filter((l) => l.startsWith('|'));
  const cells = (line: string) => line.split('|').slice(1, -1).map((c) => c.trim());
  const [header, , ...rows] = lines.map(cells);
  const table = new Map<string, Record<string, string>>();
  for (const row of rows) {
    const entry: Record<string, string> = {};
    row.forEach((cell, i) => { entry[header[i]] = cell === 'same' ? entry[header[i - 1]] : cell; });
    table.set(row[0], entry);
  }
  return table;
}

/**
 * Files whose decoded bytes differ from PIL's on a host, with the reason; each is a known, documented
 * defect (docs/API.md), listed so that any other difference fails.
 */
const KNOWN_DIFFERENCES: Record<string, string[]> = {
  // Corrupt entropy-coded data: jSquash's MozJPEG (libjpeg-turbo code of 2017) recovers otherwise than Pillow's.
  'pillow/Tests/images/hopper_bad_exif.jpg': ['web', 'deno', 'workerd', 'chromium'],
};

/** How a host's verdict on a file compares with PIL's; a problem names the file and what went wrong. */
function judge(host: Host, ref: Reference, file: string, got: Verdict): { outcome: string; problem?: string } {
  if ('crashed' in got) return { outcome: 'PROBLEM', problem: `${file}: crashed: ${got.crashed}` };
  if (ref.refused !== undefined) return { outcome: 'refused' in got ? 'both refuse' : 'PIL refuses, host decodes' };
  if (ref.overLimit) {
    if ('refused' in got && (/over the limit/.test(got.refused) || cannotRead(host, ref, got.refused))) return { outcome: 'over the pixel limit' };
    return { outcome: 'PROBLEM', problem: `${file}: over the pixel limit but not refused as such` };
  }
  if ('refused' in got) {
    if (cannotRead(host, ref, got.refused)) return { outcome: 'documented refusal' };
    return { outcome: 'PROBLEM', problem: `${file} (${ref.format} ${ref.mode}): refused: ${got.refused}` };
  }
  if (got.sha256 === ref.sha256) return { outcome: 'identical' };
  return { outcome: 'PROBLEM', problem: `${file} (${ref.format} ${ref.mode}): pixels differ from PIL's` };
}

const reference = loadReference();
const files = Object.keys(reference);
const results: Record<string, Verdicts> = {};

test.before(() => ensureBuilt());
test.after(() => rmSync(tmp, { recursive: true, force: true, maxRetries: 5 }));

test('docs/API.md\'s format table documents every refusal the hosts are allowed', () => {
  const table = formatTable();
  for (const [name, host] of Object.entries(HOSTS)) {
    for (const { row, message } of host.documented) {
      const label = [...table.keys()].find((l) => l.startsWith(row));
      const cell = label === undefined ? undefined : table.get(label)![host.column];
      assert.ok(cell?.includes('refused'), `${name}: the table's "${row}" row, column "${host.column}", documents no refusal: ${cell}`);
      const quoted = [...cell!.matchAll(/refused: "([^"]+)"/g)].map((m) => m[1]);
      assert.ok(quoted.length === 0 || quoted.some((q) => message.test(q)), `${name}: the table's "${row}" row quotes ${quoted.join(', ')}, not ${message}`);
    }
  }
});

for (const [name, host] of Object.entries(HOSTS)) {
  test(`${name}: every corpus file PIL opens decodes to PIL's bytes or is a documented refusal`, async () => {
    assert.ok(files.length > 800, `${files.length} corpus files`);
    const started = performance.now();
    const verdicts = results[name] = await host.verdicts(files);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const counts: Record<string, number> = {};
    const problems: string[] = [];
    for (const file of files) {
      let { outcome, problem } = judge(host, reference[file], file, verdicts[file] ?? { crashed: 'no verdict' });
      if (problem && / differ /.test(problem) && KNOWN_DIFFERENCES[file]?.includes(name)) [outcome, problem] = ['known difference', undefined];
      counts[outcome] = (counts[outcome] ?? 0) + 1;
      if (problem) problems.push(problem);
    }
    console.log(`  ${name} (${seconds} s): ${JSON.stringify(counts)}`);
    assert.equal(problems, [], problems.join('\n'));
  });
}

test('files PIL refuses get one answer on every host (documented refusals aside)', () => {
  const problems: string[] = [];
  for (const file of files.filter((f) => reference[f].refused !== undefined)) {
    const answers = new Set(Object.entries(results).map(([host, verdicts]) => [host, verdicts[file]] as const)
      .filter(([host, v]) => !('refused' in v && cannotRead(HOSTS[host], reference[file], v.refused)))
      .map(([, v]) => 'sha256' in v ? v.sha256 : 'refused'));
    if (answers.size > 1) {
      const each = Object.fromEntries(Object.entries(results).map(([host, verdicts]) => [host, verdicts[file]]));
      problems.push(`${file}: PIL refuses it (${reference[file].refused}); the hosts disagree: ${JSON.stringify(each)}`);
    }
  }
  assert.is(Object.keys(results).length, Object.keys(HOSTS).length, 'a host has no verdicts (its test failed)');
  assert.equal(problems, [], problems.join('\n'));
});

test.run();

// Hostile input found from outside (memory bombs, trusted metadata, special files, the terminal), each case as
// an attacker would send it, with the cost asserted where the input is a bomb: a refusal that first fills
// memory or hangs is not a refusal. Bombs run in a child process (helpers/measured.ts) with a time limit.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer, type Server } from 'node:http';
import { unzipSync } from 'fflate';
import { convertCheckpoint } from '../src/convert/checkpoint.js';
import { layoutTensors } from '../src/convert/pack.js';
import { readVimq, writeVimq } from '../src/formats/vimq.js';
import { layoutBytes, runtimeTensors, type ModelMetadata } from '../src/model/contract.js';
import type { VimConfig } from '../src/model/config.js';
import { readFloatModel } from '../src/model/model-file.js';
import { listImages, imageFolder } from '../src/datasets/image-folder.js';
import * as output from '../src/cli/output.js';
import { loadClassifier } from '../src/index.js';
import { rejects } from './helpers/rejects.js';
import { measured, type Measured } from './helpers/measured.js';
import { noStackTrace, refused, vimedge } from './helpers/cli.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'vimedge-hostile-'));
const SMALL_PTH = 'test/fixtures/small/small/model.pth';
const IMAGE = 'test/fixtures/images/motorcycle_tiny_50x40.png';
/** A child that only imports the module and refuses: node + tsx + the module's imports, with room to spare. */
const BOUNDED_RSS_MIB = 300;

function withinBounds(m: Measured, pattern: RegExp, maxMs: number, maxRssMiB = BOUNDED_RSS_MIB): void {
  assert.ok(m.killed === undefined, `killed at the time limit or crashed: ${m.killed}`);
  assert.ok(m.error, `accepted: ${JSON.stringify(m.value)?.slice(0, 200)}`);
  assert.match(m.error!.message, pattern);
  assert.ok(m.ms < maxMs, `took ${m.ms.toFixed(0)} ms (limit ${maxMs})`);
  assert.ok(m.maxRssMiB < maxRssMiB, `peak RSS ${m.maxRssMiB.toFixed(0)} MiB (limit ${maxRssMiB})`);
}

// --- a zip whose central directory aliases one blob many times ---------------------------------------------

/** A stored zip of `files`, plus central-directory entries `aliases` [name, target] that point at a target's bytes. */
function storedZip(files: [string, Uint8Array][], aliases: [string, string][]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const local = new Map<string, { offset: number; size: number }>();
  let at = 0;
  for (const [name, data] of files) {
    const header = new DataView(new ArrayBuffer(30));
    header.setUint32(0, 0x04034b50, true);
    header.setUint16(4, 20, true);
    header.setUint32(18, data.length, true);
    header.setUint32(22, data.length, true);
    header.setUint16(26, enc.encode(name).length, true);
    local.set(name, { offset: at, size: data.length });
    for (const part of [new Uint8Array(header.buffer), enc.encode(name), data]) {
      parts.push(part);
      at += part.length;
    }
  }
  const directoryAt = at;
  const entries: [string, { offset: number; size: number }][] = [
    ...files.map(([name]): [string, { offset: number; size: number }] => [name, local.get(name)!]),
    ...aliases.map(([name, target]): [string, { offset: number; size: number }] => [name, local.get(target)!]),
  ];
  for (const [name, { offset, size }] of entries) {
    const header = new DataView(new ArrayBuffer(46));
    header.setUint32(0, 0x02014b50, true);
    header.setUint16(4, 20, true);
    header.setUint16(6, 20, true);
    header.setUint32(20, size, true);
    header.setUint32(24, size, true);
    header.setUint16(28, enc.encode(name).length, true);
    header.setUint32(42, offset, true);
    for (const part of [new Uint8Array(header.buffer), enc.encode(name)]) {
      parts.push(part);
      at += part.length;
    }
  }
  const eocd = new DataView(new ArrayBuffer(22));
  eocd.setUint32(0, 0x06054b50, true);
  eocd.setUint16(8, entries.length, true);
  eocd.setUint16(10, entries.length, true);
  eocd.setUint32(12, at - directoryAt, true);
  eocd.setUint32(16, directoryAt, true);
  parts.push(new Uint8Array(eocd.buffer));
  const out = new Uint8Array(at + 22);
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

test('.pth: storages aliasing one 16 MiB blob are refused before any copy (bounded memory and time)', async () => {
  const entries = unzipSync(readFileSync(SMALL_PTH));
  const storages = Object.keys(entries).filter((n) => n.includes('/data/'));
  const [blob, ...aliased] = storages;
  const bomb = storedZip([['model/data.pkl', entries['model/data.pkl']], [blob, new Uint8Array(16 << 20)]],
    aliased.map((name) => [name, blob]));
  const file = path.join(tmp, 'aliased.pth');
  writeFileSync(file, bomb);
  // Copying every alias would take storages.length x 16 MiB (> 600 MiB).
  const m = await measured("import { readFileSync } from 'node:fs';\nimport { readPth } from 'src/formats/pth.ts';",
    `return readPth(new Uint8Array(readFileSync(${JSON.stringify(file)})), 'aliased.pth').size;`, 30_000);
  withinBounds(m, /aliased\.pth: zip entries model\/data\/\d+ and model\/data\/\d+ overlap/, 5_000);
});

// --- .vimq metadata, signed by whoever wrote it --------------------------------------------------------------

let small: { metadata: ModelMetadata; data: Uint8Array };
const vimqWith = (edit: (m: ModelMetadata) => void): Promise<Uint8Array> => {
  const metadata = structuredClone(small.metadata);
  edit(metadata);
  return writeVimq(metadata, small.data);   // a valid checksum: anyone can sign anything
};

test('setup: the small model as .vimq', async () => {
  small = await readVimq(await convertCheckpoint(readFileSync(SMALL_PTH), 'model.pth'), 'model.vimq');
});

test('quantize / outliers read .vimq metadata through the same check as the loader', async () => {
  const cases: [(m: ModelMetadata) => void, RegExp][] = [
    [(m) => { m.config.depth = 1e9; }, /config depth 1000000000 exceeds the \d+ stored tensors/],
    [(m) => { m.config.embedDim = 2 ** 40; }, /config needs pos_embed \(numTokens × embedDim\) = \d+ weights/],
    [(m) => { delete (m as Partial<ModelMetadata>).labels; }, /labels are not a list of strings/],
  ];
  for (const [edit, pattern] of cases) {
    await rejects(async () => readFloatModel(await vimqWith(edit), 'm.vimq'), 'BAD_MODEL_FILE', pattern);
  }
});

test('quantize of a .vimq without labels is refused before calibration, in one line', async () => {
  const file = path.join(tmp, 'no-labels.vimq');
  writeFileSync(file, await vimqWith((m) => { delete (m as Partial<ModelMetadata>).labels; }));
  refused(vimedge(['quantize', file, '-o', path.join(tmp, 'q.vimq'), '--calib', path.join(tmp, 'no-such-folder')]),
    /no-labels\.vimq: labels are not a list of strings/);
});

test('inspect of a .vimq missing a record, or with an odd quantization record: one line each', async () => {
  const cases: [string, (m: ModelMetadata) => void, RegExp][] = [
    ['labels', (m) => { delete (m as Partial<ModelMetadata>).labels; }, /labels are not a list of strings/],
    ['config', (m) => { delete (m as Partial<ModelMetadata>).config; }, /metadata has no config/],
    ['source', (m) => { delete (m as Partial<ModelMetadata>).source; }, /source undefined is not/],
    ['preprocess', (m) => { delete (m as Partial<ModelMetadata>).preprocess; }, /metadata has no preprocess/],
    ['recipe', (m) => { m.weights = 'w8a8'; (m as { quantization: unknown }).quantization = { method: 'rtn', bits: 'w8a8' }; },
      /quantization record weightBits/],
  ];
  for (const [name, edit, pattern] of cases) {
    const file = path.join(tmp, `no-${name}.vimq`);
    writeFileSync(file, await vimqWith(edit));
    refused(vimedge(['inspect', file]), pattern);
  }
});

// --- maxMemory ---------------------------------------------------------------------------------------------

/** A 2 MB file declaring a 16384 x 16384 input: 2 GiB of run state (image and patch rows), zero weights. */
async function hugeInputModel(): Promise<Uint8Array> {
  const config: VimConfig = { ...small.metadata.config, channels: 1, patchSize: 256, stride: 256, gridSize: 64,
    imageSize: 16384, numTokens: 64 * 64 + 1, clsIndex: 2048, embedDim: 8, innerDim: 16, dState: 4, dtRank: 1,
    depth: 1, numClasses: 2 };
  const { tensors, data } = layoutTensors(runtimeTensors(config), (t) => new Uint8Array(layoutBytes(t.shape, t.layout)));
  return writeVimq({ ...small.metadata, config, labels: ['a', 'b'], tensors,
    preprocess: { ...small.metadata.preprocess, channels: 1, mean: [0.5], std: [0.5], crop: 16384, resize: 16384 } }, data);
}

test('maxMemory: a model whose planned WebAssembly memory is over the limit is refused before allocating it', async () => {
  const file = path.join(tmp, 'huge-input.vimq');
  writeFileSync(file, await hugeInputModel());
  const m = await measured("import { loadClassifier } from 'src/index.ts';",
    `return (await loadClassifier(${JSON.stringify(file)})).info.memoryBytes;`, 60_000);
  withinBounds(m, /needs 20\d\d\.\d MiB of WebAssembly memory .* over the maxMemory limit of 2048\.0 MiB/, 5_000);
  const bytes = readFileSync(SMALL_PTH);
  await rejects(() => loadClassifier(bytes, { maxMemory: 100_000 }), 'BAD_MODEL', /over the maxMemory limit of 0\.1 MiB/);
  await rejects(() => loadClassifier(bytes, { maxMemory: -1 }), 'BAD_ARGUMENT', /maxMemory must be a positive number/);
  refused(vimedge(['classify', '--model', file, '--max-memory', '1', IMAGE]), /over the maxMemory limit of 1\.0 MiB/);
  // quantize and outliers run the fp32 model on the calibration images: the same limit, before any image is read.
  for (const verb of ['quantize', 'outliers']) {
    refused(vimedge([verb, file, '-o', path.join(tmp, `${verb}.out`)]), /needs 20\d\d\.\d MiB of WebAssembly memory .* over the maxMemory limit of 2048\.0 MiB/);
    refused(vimedge([verb, file, '--max-memory', '1', '-o', path.join(tmp, `${verb}.out`)]), /over the maxMemory limit of 1\.0 MiB/);
  }
});

// --- output files ------------------------------------------------------------------------------------------

test('-o refuses a FIFO, a symbolic link, a folder and an empty name before any work, and leaves them as they were', () => {
  const fifo = path.join(tmp, 'out.fifo');
  execFileSync('mkfifo', [fifo]);
  const target = path.join(tmp, 'target.vimq');
  writeFileSync(target, 'keep');
  const link = path.join(tmp, 'link.vimq');
  symlinkSync(target, link);
  for (const [output, pattern] of [[fifo, /is a FIFO, not a file/], [link, /is a symbolic link, not a file/],
    [tmp, /is a folder, not a file/], ['', /'' is not a file name/]] as const) {
    const r = vimedge(['convert', SMALL_PTH, '-o', output]);
    assert.is(r.code, 2, r.stderr);   // refused as the options are read: a usage error
    assert.match(r.stderr, pattern);
    noStackTrace(r.stderr);
  }
  assert.ok(lstatSync(fifo).isFIFO());
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.is(readFileSync(target, 'utf8'), 'keep');
  assert.match(output.outputProblem('/dev/null') ?? '', /\/dev\/null is a device, not a file/);
});

test('writeFileAtomic refuses a target that became a FIFO after the options were read', async () => {
  const fifo = path.join(tmp, 'late.fifo');
  execFileSync('mkfifo', [fifo]);
  await rejects(() => output.writeFileAtomic(fifo, new Uint8Array(4)), 'BAD_ARGUMENT', /late\.fifo is a FIFO, not a file/);
  assert.ok(lstatSync(fifo).isFIFO());
});

// --- walked folders and special files ----------------------------------------------------------------------

test('folder walks do not follow links to folders and skip FIFOs, devices and links to them', async () => {
  const root = path.join(tmp, 'walk');
  mkdirSync(path.join(root, 'cls', 'sub'), { recursive: true });
  copyFileSync(IMAGE, path.join(root, 'cls', 'a.png'));
  copyFileSync(IMAGE, path.join(root, 'cls', 'sub', 'b.png'));
  symlinkSync('..', path.join(root, 'cls', 'sub', 'up'));    // a loop: counted 82 times by a following walk
  symlinkSync('.', path.join(root, 'cls', 'here'));
  symlinkSync('sub', path.join(root, 'cls', 'folder.png'));
  symlinkSync('/dev/zero', path.join(root, 'cls', 'zero.png'));
  execFileSync('mkfifo', [path.join(root, 'cls', 'fifo.png')]);
  const started = performance.now();
  assert.equal((await listImages(path.join(root, 'cls'))).map((f) => path.relative(root, f)), ['cls/a.png', 'cls/sub/b.png']);
  assert.is((await imageFolder(root)).count, 2);
  assert.ok(performance.now() - started < 2_000);
});

test('classify of a folder with an unreadable sub-folder: one line naming it, no stack trace', () => {
  const root = path.join(tmp, 'locked-walk');
  mkdirSync(path.join(root, 'locked'), { recursive: true });
  copyFileSync(IMAGE, path.join(root, 'a.png'));
  chmodSync(path.join(root, 'locked'), 0);
  chmodSync(tmp, 0o755);
  // root reads any folder: run the CLI as nobody there
  const user = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'classify', '--model', SMALL_PTH, root],
    { encoding: 'utf8', timeout: 60_000, ...user });
  refused({ code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, /locked-walk\/locked: cannot list this folder \(EACCES\)/);
});

test('special files are refused by a stat of the opened file, before reading: /dev/zero, a FIFO, a link to /dev/zero', async () => {
  const fifo = path.join(tmp, 'read.fifo');
  execFileSync('mkfifo', [fifo]);
  const link = path.join(tmp, 'zero.png');
  symlinkSync('/dev/zero', link);
  const m = await measured("import { readFileChecked } from 'src/hosts/node.ts';", `
    const messages = [];
    for (const file of ['/dev/zero', ${JSON.stringify(fifo)}, ${JSON.stringify(link)}]) {
      try { await readFileChecked(file, 'image'); } catch (e) { messages.push(e.message); }
    }
    throw new Error(messages.join(' | '));`, 20_000);
  withinBounds(m, /^\/dev\/zero: is not a regular file .* \| .*read\.fifo: is not a regular file .* \| .*zero\.png: is not a regular file/, 2_000);
  const r = vimedge(['classify', '--model', SMALL_PTH, '/dev/zero'], { timeout: 30_000 });
  refused(r, /\/dev\/zero: is not a regular file/);
});

// --- URLs --------------------------------------------------------------------------------------------------

function serve(): Promise<{ server: Server; base: string }> {
  const server = createServer((request, response) => {
    if (request.url === '/silent') return;   // headers never come
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = new Uint8Array(1 << 16);
    const pump = () => { while (response.write(chunk)); };
    response.on('drain', pump);
    request.on('close', () => response.destroy());
    pump();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    resolve({ server, base: `http://127.0.0.1:${port}` });
  }));
}

test('URLs: an endless body is cut at maxBytes, a silent server at timeoutMs (model and image)', async () => {
  const { server, base } = await serve();
  try {
    const fetchOptions = '{ fetch: { maxBytes: 4 << 20, timeoutMs: 1_500 } }';
    const endless = await measured("import { loadClassifier } from 'src/index.ts';",
      `return (await loadClassifier('${base}/endless', ${fetchOptions})).info;`, 30_000);
    withinBounds(endless, /\/endless: the response is longer than the limit of 4194304 bytes/, 5_000);
    const silent = await measured("import { loadClassifier } from 'src/index.ts';",
      `return (await loadClassifier('${base}/silent', ${fetchOptions})).info;`, 30_000);
    withinBounds(silent, /\/silent: no complete response within 1500 ms/, 5_000);
    const image = await measured("import { readFileSync } from 'node:fs';\nimport { loadClassifier } from 'src/index.ts';", `
      const clf = await loadClassifier(readFileSync(${JSON.stringify(SMALL_PTH)}), ${fetchOptions});
      return clf.classify('${base}/endless');`, 30_000);
    withinBounds(image, /\/endless: the response is longer than the limit/, 5_000);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

// --- the terminal ------------------------------------------------------------------------------------------

test('labels from a model and file names from a folder reach the terminal escaped; JSON reads them back', async () => {
  const title = '\u001b]0;owned\u0007', rtl = 'gnp.\u202eexe';
  const labels = small.metadata.labels.map((l, i) => (i % 2 ? `${l}${title}` : `${rtl}${l}`));
  const model = path.join(tmp, 'escapes.vimq');
  writeFileSync(model, await vimqWith((m) => { m.labels = labels; }));
  const dir = path.join(tmp, 'names');
  mkdirSync(dir);
  const name = `red\u001b[31m${rtl}.png`;
  copyFileSync(IMAGE, path.join(dir, name));
  const raw = /[\u001b\u0007\u202e]/;
  const text = vimedge(['classify', '--model', model, '-k', String(labels.length), dir]);
  assert.is(text.code, 0, text.stderr);
  assert.not.match(text.stdout, raw);
  assert.match(text.stdout, /red\\u001b\[31mgnp\.\\u202eexe\.png: /);
  const json = vimedge(['classify', '--model', model, '--json', '-k', String(labels.length), dir]);
  assert.not.match(json.stdout, raw);
  const line = JSON.parse(json.stdout);
  assert.is(path.basename(line.file), name);
  assert.equal(line.top.map((p: { label: string }) => p.label).sort(), [...labels].sort());
  const inspect = vimedge(['inspect', model]);
  assert.is(inspect.code, 0, inspect.stderr);
  assert.not.match(inspect.stdout, raw);
  assert.match(inspect.stdout, /\\u202e/);
});

test.run();

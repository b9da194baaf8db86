// The CLI under bad input and interruption, and without a network:
// - a folder mixing good, hostile and odd files is classified file by file (test/cli.test.ts has the basic
//   empty / text / truncated / missing cases; these are the rest), with a summary and exit code 1;
// - Ctrl-C (SIGINT) or SIGTERM while `convert`, `quantize` or `eval --plot` writes its output leaves neither
//   the output nor its temporary file, whether it arrives during the write or between write and rename;
// - classify, convert, inspect and bench run with every network API of Node stubbed to fail;
// - a reader that closes the pipe early (`vimedge classify folder | head -1`) ends the run quietly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { readVimq, writeVimq } from '../src/formats/vimq.js';
import type { ModelMetadata } from '../src/model/contract.js';
import { noStackTrace, refused, startVimedge, vimedge } from './helpers/cli.js';
import { headerOnlyPng } from './helpers/png.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'vimedge-resilience-'));
const SMALL = 'test/fixtures/small/small';
const IMAGES = 'test/fixtures/images';
const FASHION_MNIST = existsSync('src/datasets/fashion-mnist.ts');

const model = path.join(tmp, 'small.vimq');
test('setup: a small model', () => {
  const r = vimedge(['convert', `${SMALL}/model.pth`, '-o', model]);
  assert.is(r.code, 0, r.stderr);
});

// --- a folder of good and bad files ------------------------------------------------------------------------

test('a folder of good, hostile and odd files: every bad one reported by name, the rest classified, exit 1', async () => {
  const dir = path.join(tmp, 'mixed');
  mkdirSync(path.join(dir, 'nested', 'deeper'), { recursive: true });
  const good = ['chelsea_anim_160x107.gif', 'coffee_cmyk_180x120.jpg', 'rocket_rgb16_97x73.png', 'motorcycle_187x126.webp'];
  for (const f of good) copyFileSync(`${IMAGES}/${f}`, path.join(dir, f));
  copyFileSync(`${IMAGES}/motorcycle_tiny_50x40.png`, path.join(dir, 'nested', 'deeper', 'tiny.png'));
  writeFileSync(path.join(dir, 'one-pixel.png'), await sharp({ create: { width: 1, height: 1, channels: 3, background: '#fff' } }).png().toBuffer());
  symlinkSync(path.resolve(`${IMAGES}/camera_grey_257x383.png`), path.join(dir, 'linked.png'));
  // the bad ones
  writeFileSync(path.join(dir, 'bomb.png'), headerOnlyPng(50_000, 50_000));
  writeFileSync(path.join(dir, 'zero-width.png'), headerOnlyPng(0, 10));
  const jpeg = readFileSync(`${IMAGES}/chelsea_451x300.jpg`);
  writeFileSync(path.join(dir, 'cut.jpg'), jpeg.subarray(0, 600));
  writeFileSync(path.join(dir, 'model-not-image.jpg'), readFileSync(`${SMALL}/model.pth`));
  writeFileSync(path.join(dir, 'binary-junk.webp'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)));
  symlinkSync(path.join(dir, 'does-not-exist.png'), path.join(dir, 'dangling.png'));
  mkdirSync(path.join(dir, 'a-folder.png')); // a directory with an image's name: not a file, not listed
  writeFileSync(path.join(dir, 'notes.txt'), 'not an image extension: not listed');

  const r = vimedge(['classify', '--model', model, '--json', dir]);
  assert.is(r.code, 1, r.stderr);
  noStackTrace(r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const classified = lines.filter((l) => l.top).map((l) => path.basename(l.file)).sort();
  assert.equal(classified, [...good, 'linked.png', 'one-pixel.png', 'tiny.png'].sort());
  for (const l of lines.filter((l) => l.top)) assert.is(l.top.length, 5);
  const bad: [string, RegExp][] = [
    ['bomb.png', /50000x50000 = 2500000000 pixels, over the limit of 100000000/],
    ['zero-width.png', /zero-width\.png: /],
    ['cut.jpg', /cut\.jpg: /],
    ['model-not-image.jpg', /model-not-image\.jpg: not a readable image/],
    ['binary-junk.webp', /binary-junk\.webp: not a readable image/],
    ['dangling.png', /dangling\.png: /],
  ];
  // --json: each failure is a JSON line on stdout, {file, error: {code, message}}, in the files' order.
  const failures = lines.filter((l) => l.error);
  assert.is(failures.length, bad.length, r.stdout);
  for (const [file, message] of bad) {
    const line = failures.find((l) => path.basename(l.file) === file);
    assert.ok(line, `${file} not reported:\n${r.stdout}`);
    assert.match(line.error.message, message);
    assert.match(line.error.code, /^BAD_IMAGE$/);
  }
  assert.not.match(r.stderr, /not a readable image/);
  assert.match(r.stderr, new RegExp(`${bad.length} of ${bad.length + classified.length} images could not be classified`));
  assert.not.match(r.stderr, /a-folder\.png|notes\.txt/);
});

test('--max-pixels: images over the limit are refused by name, the others classified', () => {
  const dir = path.join(tmp, 'limit');
  mkdirSync(dir);
  copyFileSync(`${IMAGES}/motorcycle_tiny_50x40.png`, path.join(dir, 'small.png'));  // 2000 pixels
  copyFileSync(`${IMAGES}/chelsea_451x300.jpg`, path.join(dir, 'large.jpg'));        // 135300 pixels
  const r = vimedge(['classify', '--model', model, '--max-pixels', '2000', dir]);
  assert.is(r.code, 1);
  noStackTrace(r.stderr);
  assert.match(r.stdout, /small\.png: /);
  assert.match(r.stderr, /large\.jpg: 451x300 = 135300 pixels, over the limit of 2000/);
  assert.match(r.stderr, /1 of 2 images could not be classified/);
  refused(vimedge(['classify', '--model', model, '--max-pixels', '-5', dir]), /--max-pixels needs a positive integer/, 2);
});

test('a re-signed model file with a hostile config is one clear error, not a crash', async () => {
  const { metadata, data } = await readVimq(new Uint8Array(readFileSync(model)));
  // Two of the cases test/fuzz-vimq.test.ts searches in-process (each crashed or trapped before the checks):
  // here through the CLI, which must print one line.
  const cases: [(m: ModelMetadata) => void, RegExp][] = [
    [(m) => { m.config.depth = 100_000_000; }, /config depth 100000000 exceeds the \d+ stored tensors/],
    [(m) => { m.config.clsIndex = 1_000_000; }, /config clsIndex 1000000 is not the middle of 16 patches \(8\)/],
  ];
  for (const [edit, message] of cases) {
    const m = structuredClone(metadata);
    edit(m);
    const file = path.join(tmp, 'hostile.vimq');
    writeFileSync(file, await writeVimq(m, data));
    const r = vimedge(['classify', '--model', file, `${IMAGES}/motorcycle_tiny_50x40.png`]);
    refused(r, message);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

// --- interrupted writes ------------------------------------------------------------------------------------

/**
 * A preload that holds the CLI at one point of writeFileAtomic: 'write' (part of the temporary file written) or
 * 'rename' (temporary file complete, not yet renamed), and says so on stderr. The ESM bindings of
 * node:fs/promises are updated with syncBuiltinESMExports, so src/cli/output.ts sees the wrappers.
 */
const HOLD = path.join(tmp, 'hold.mjs');
writeFileSync(HOLD, `
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
const phase = process.env.VIMEDGE_TEST_HOLD;
const realRename = fsp.rename, realOpen = fsp.open;
const hold = (what, file) => {
  process.stderr.write('HOLD ' + what + ' ' + file + '\\n');
  return new Promise(() => setInterval(() => {}, 1000));
};
fsp.rename = async (from, to) => {
  if (phase === 'rename' && String(from).includes('.partial-')) await hold('rename', from);
  return realRename(from, to);
};
// The temporary file is written through its handle, whole (writeFile) or piece by piece (write): hold after
// half of a whole write, or after the first piece.
fsp.open = async (file, ...rest) => {
  const handle = await realOpen(file, ...rest);
  if (phase === 'write' && String(file).includes('.partial-')) {
    const write = handle.write.bind(handle);
    handle.writeFile = async (data) => { await write(data, 0, data.length >> 1, 0); await hold('write', file); };
    handle.write = async (...args) => { await write(...args); await hold('write', file); };
  }
  return handle;
};
syncBuiltinESMExports();
`);

/** Runs the CLI held at `phase`, sends `signal` once it is there, and returns how it ended. */
function interrupted(args: string[], phase: 'write' | 'rename', signal: NodeJS.Signals) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; temporary: string; stderr: string }>((resolve, reject) => {
    const child = startVimedge(args, { preloads: [HOLD], env: { ...process.env, VIMEDGE_TEST_HOLD: phase } });
    let stderr = '';
    let temporary = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`never reached ${phase}: ${stderr}`)); }, 120_000);
    child.stderr.on('data', (d) => {
      stderr += d;
      const held = /HOLD (\w+) (.+)\n/.exec(stderr);
      if (held && !temporary) {
        temporary = held[2];
        assert.ok(existsSync(temporary), `${temporary} should exist while held`);
        child.kill(signal);
      }
    });
    child.on('exit', (code, sig) => { clearTimeout(timer); resolve({ code, signal: sig, temporary, stderr }); });
  });
}

type Interruption = readonly ['write' | 'rename', NodeJS.Signals];
const ALL_INTERRUPTIONS: Interruption[] = [['rename', 'SIGINT'], ['write', 'SIGINT'], ['rename', 'SIGTERM']];

async function leavesNothing(args: string[], output: string, interruptions: Interruption[] = ALL_INTERRUPTIONS): Promise<void> {
  for (const [phase, signal] of interruptions) {
    rmSync(output, { force: true });
    const r = await interrupted(args, phase, signal);
    assert.is(r.signal, signal, `${phase}/${signal}: exited with code ${r.code}, signal ${r.signal}\n${r.stderr}`);
    assert.not.ok(existsSync(r.temporary), `${phase}/${signal}: ${r.temporary} left behind`);
    assert.not.ok(existsSync(output), `${phase}/${signal}: ${output} written`);
    const leftovers = readdirSync(path.dirname(output)).filter((f) => f.startsWith(path.basename(output)));
    assert.equal(leftovers, [], `${phase}/${signal}`);
  }
}

test('convert: SIGINT or SIGTERM during the write or before the rename leaves no output and no temporary file', async () => {
  const out = path.join(tmp, 'out', 'converted.vimq');
  mkdirSync(path.dirname(out), { recursive: true });
  await leavesNothing(['convert', `${SMALL}/model.pth`, '-o', out], out);
  // and uninterrupted, the same command writes the file (the hold preload is what stopped it)
  const r = vimedge(['convert', `${SMALL}/model.pth`, '-o', out]);
  assert.is(r.code, 0, r.stderr);
  assert.ok(existsSync(out));
});

/** A folder of class sub-folders (two classes, three images each) for eval and quantize. */
function imageFolder(): string {
  const dir = path.join(tmp, 'folder');
  if (existsSync(dir)) return dir;
  const files = readdirSync(IMAGES).filter((f) => /\.(png|jpg)$/.test(f)).slice(0, 6);
  files.forEach((f, i) => {
    mkdirSync(path.join(dir, `class_${i % 2}`), { recursive: true });
    copyFileSync(path.join(IMAGES, f), path.join(dir, `class_${i % 2}`, f));
  });
  return dir;
}

const needsDatasets = FASHION_MNIST ? test : test.skip;

needsDatasets('quantize: an interrupted write leaves no output and no temporary file', async () => {
  const out = path.join(tmp, 'out', 'quantized.vimq');
  // convert goes through every phase and signal; the write path is the same function, so one here.
  await leavesNothing(['quantize', model, '-o', out, '--method', 'rtn', '--calib', imageFolder(), '--calib-size', '4'], out, [['rename', 'SIGINT']]);
});

needsDatasets('eval --plot: an interrupted write leaves no plot and no temporary file', async () => {
  const out = path.join(tmp, 'out', 'confusion.png');
  await leavesNothing(['eval', model, '--dataset', imageFolder(), '--plot', out], out, [['write', 'SIGINT']]);
});

// --- no network ---------------------------------------------------------------------------------------------

const OFFLINE = path.join(tmp, 'offline.mjs');
writeFileSync(OFFLINE, `
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import dns from 'node:dns';
import dgram from 'node:dgram';
import { syncBuiltinESMExports } from 'node:module';
const refuse = (what) => function () {
  process.stderr.write('NETWORK ' + what + '\\n');
  throw new Error('network access attempted: ' + what);
};
// Unix-domain sockets are local IPC, not network (tsx, which runs these TypeScript sources, talks to its
// parent over one); anything with a port or host is refused.
const ipcOnly = (what, real) => function (...args) {
  const target = Array.isArray(args[0]) ? args[0][0] : args[0]; // Socket.connect gets net.connect's normalised args
  const isPath = typeof target === 'string' && !/^\\d+$/.test(target) || (target && typeof target === 'object' && 'path' in target && !('port' in target));
  if (!isPath) return refuse(what)();
  return real.apply(this, args);
};
net.connect = net.createConnection = ipcOnly('net.connect', net.connect);
net.Socket.prototype.connect = ipcOnly('net.Socket.connect', net.Socket.prototype.connect);
tls.connect = refuse('tls.connect');
http.request = http.get = refuse('http.request');
https.request = https.get = refuse('https.request');
http2.connect = refuse('http2.connect');
dns.lookup = dns.resolve = dns.resolve4 = dns.resolve6 = refuse('dns');
dns.promises.lookup = dns.promises.resolve = refuse('dns.promises');
dgram.createSocket = refuse('dgram.createSocket');
globalThis.fetch = refuse('fetch');
globalThis.WebSocket = globalThis.EventSource = function () { refuse('WebSocket/EventSource')(); };
syncBuiltinESMExports();
`);

test('no network: classify, convert, inspect, bench and eval --plot run with every Node network API stubbed to fail', () => {
  const runs = [
    ['classify', '--model', `${SMALL}/model.pth`, '--json', `${IMAGES}/chelsea_451x300.jpg`, `${IMAGES}/rocket_rgb16_97x73.png`],
    ['convert', `${SMALL}/model.safetensors`, '-o', path.join(tmp, 'offline.vimq')],
    ['inspect', path.join(tmp, 'offline.vimq')],
    ['bench', path.join(tmp, 'offline.vimq'), '--runs', '2', '--warmup', '1'],
    // the confusion plot goes through vega, whose loader could fetch a URL: the spec is inline data only
    ...(FASHION_MNIST ? [['eval', path.join(tmp, 'offline.vimq'), '--dataset', imageFolder(), '--plot', path.join(tmp, 'offline.png')]] : []),
  ];
  for (const args of runs) {
    const r = vimedge(args, { preloads: [OFFLINE] });
    assert.is(r.code, 0, `${args[0]}: ${r.stderr}`);
    assert.not.match(r.stderr, /NETWORK/, `${args[0]} tried the network:\n${r.stderr}`);
  }
  // The stub works: a fetch does trip it.
  const probe = spawnSync(process.execPath, ['--import', pathToFileURL(OFFLINE).href, '-e', "fetch('http://127.0.0.1:9/').catch(() => {})"], { encoding: 'utf8' });
  assert.match(probe.stderr, /NETWORK fetch/);
});

test('no network in the sources: Node network modules are imported nowhere, fetch only where a caller passes a URL', () => {
  const files = (readdirSync('src', { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => path.join('src', f));
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    assert.not.match(text, /from ['"](node:)?(net|tls|http|https|http2|dgram|dns)['"]/, `${file} imports a network module`);
    assert.not.match(text, /new (WebSocket|EventSource|XMLHttpRequest)\b/, `${file} opens a connection`);
    // fetch() is called in one place: hosts/loading.ts fetchBytes, which loads what the caller named by a URL.
    const calls = text.match(/\bfetch\(/g)?.length ?? 0;
    if (file !== path.join('src', 'hosts', 'loading.ts')) assert.is(calls, 0, `${file} calls fetch`);
  }
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('stdout closed after the first line (| head -1): exit 0, no EPIPE trace', async () => {
  const child = startVimedge(['classify', '-m', model, IMAGES, IMAGES, IMAGES]);
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.not.match(stderr, /EPIPE/, stderr);
  assert.is(code, 0, stderr);
});

test.run();

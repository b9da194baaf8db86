// Shared machinery of the fuzz suites (test/fuzz-*.test.ts, run longer by bench/fuzz.ts): the seed and the
// number of cases, the property every parser must satisfy (a valid result or a VimedgeError with a message:
// never another exception, a hang or an allocation out of proportion to the input), byte-level mutations of
// real files, and walkers that find the section boundaries and length fields of each container.
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { appendFileSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { VimedgeError } from '../../src/errors.js';
import type { LoadedModel } from '../../src/model/model-file.js';
import { numel, type StateDict } from '../../src/tensor.js';

// --- seed and budget --------------------------------------------------------------------------------------

/** CI runs one fixed seed; bench/fuzz.ts passes its own (VIMEDGE_FUZZ_SEED) and a larger budget. */
export const FUZZ_SEED = Number(process.env.VIMEDGE_FUZZ_SEED ?? 7_2026);

/**
 * Cases for one property: `ci` in CI, scaled so that a parser's properties add up to VIMEDGE_FUZZ_RUNS
 * when bench/fuzz.ts sets it. `parserTotal` is the sum of the CI budgets of that parser's properties.
 */
export function fuzzRuns(ci: number, parserTotal: number): number {
  const wanted = Number(process.env.VIMEDGE_FUZZ_RUNS ?? 0);
  if (!(wanted > 0)) return ci;
  return Math.max(1, Math.round((wanted * ci) / parserTotal));
}

export const fcOptions = (numRuns: number) => ({ seed: FUZZ_SEED, numRuns, includeErrorInReport: true });

// --- hang watchdog ----------------------------------------------------------------------------------------

/**
 * The parsers are synchronous, so a case that loops forever cannot be interrupted from its own thread. A
 * worker thread watches a heartbeat in shared memory; if one case runs longer than HANG_MS it prints the case
 * and kills the process, so CI fails loudly instead of hanging.
 */
const HANG_MS = Number(process.env.VIMEDGE_FUZZ_HANG_MS ?? 30_000);
const LABEL_BYTES = 480;
const shared = new SharedArrayBuffer(16 + LABEL_BYTES);
const beat = new Float64Array(shared, 0, 2); // [case start (ms since epoch) or 0, unused]
const labelBytes = new Uint8Array(shared, 16, LABEL_BYTES);
let watchdog: Worker | undefined;

function startWatchdog(): void {
  if (watchdog) return;
  watchdog = new Worker(`
    const { workerData } = require('node:worker_threads');
    const { writeSync } = require('node:fs');
    const beat = new Float64Array(workerData.shared, 0, 2);
    const label = new Uint8Array(workerData.shared, 16, ${LABEL_BYTES});
    setInterval(() => {
      const start = beat[0];
      if (start > 0 && Date.now() - start > workerData.limit) {
        const text = Buffer.from(label).toString('utf8').replace(/\\0+$/, '');
        writeSync(2, '\\nfuzz watchdog: case "' + text + '" has run for over ' + workerData.limit + ' ms (hang); killing the test process\\n');
        process.kill(process.pid, 'SIGKILL');
      }
    }, 250);
  `, { eval: true, workerData: { shared, limit: HANG_MS } });
  watchdog.unref();
}

function enterCase(label: string): void {
  startWatchdog();
  labelBytes.fill(0);
  labelBytes.set(new TextEncoder().encode(label).subarray(0, LABEL_BYTES));
  beat[0] = Date.now();
}

function leaveCase(): void {
  beat[0] = 0;
}

// --- the property -----------------------------------------------------------------------------------------

/** How much memory a case may add: `factor` × its input bytes + `constant` (bytes). */
export interface MemoryBound {
  factor?: number;
  constant?: number;
  /** RSS may grow by this much more than the ArrayBuffer bound (V8 heap growth, native caches). */
  rssSlack?: number;
}

const MB = 1 << 20;
/**
 * A case that used more CPU than this fails even though it ended (quadratic blow-ups hide below a hang).
 * CPU time of the process, not wall time: on a loaded machine a case can wait seconds for a core.
 */
const SLOW_MS = Number(process.env.VIMEDGE_FUZZ_SLOW_MS ?? 5_000);

/** Counts per parser, printed as one line and, for bench/fuzz.ts, appended to VIMEDGE_FUZZ_REPORT. */
export class Tally {
  cases = 0;
  accepted = 0;
  refused = 0;
  readonly codes = new Map<string, number>();
  maxCaseMs = 0;
  maxArrayBufferGrowth = 0;
  maxRssGrowth = 0;
  private started = 0;

  constructor(readonly parser: string) {}

  line(): string {
    const codes = [...this.codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ');
    return `fuzz ${this.parser}: ${this.cases} cases (seed ${FUZZ_SEED}): ${this.accepted} accepted, `
      + `${this.refused} refused${codes ? ` [${codes}]` : ''}; slowest ${this.maxCaseMs.toFixed(0)} ms, `
      + `max growth ${(this.maxArrayBufferGrowth / MB).toFixed(1)} MB ArrayBuffers / ${(this.maxRssGrowth / MB).toFixed(1)} MB RSS, `
      + `${this.seconds().toFixed(1)} s`;
  }

  /** Seconds since the first case. */
  seconds(): number {
    return this.started ? (Date.now() - this.started) / 1000 : 0;
  }

  /** Called by expectClean for every case. */
  count(): void {
    if (this.cases++ === 0) this.started = Date.now();
  }

  /** Prints the count line (the CI log's record) and appends it to the bench report when asked. */
  report(): void {
    const text = this.line();
    writeSync(1, `${text}\n`);
    const file = process.env.VIMEDGE_FUZZ_REPORT;
    if (file) {
      appendFileSync(file, `${JSON.stringify({
        parser: this.parser, seed: FUZZ_SEED, cases: this.cases, accepted: this.accepted, refused: this.refused,
        codes: Object.fromEntries(this.codes), maxCaseMs: this.maxCaseMs, maxArrayBufferGrowth: this.maxArrayBufferGrowth,
        maxRssGrowth: this.maxRssGrowth, seconds: this.seconds(),
      })}\n`);
    }
  }
}

/** Thrown (and so reported by fast-check with its seed and path) when a case breaks the property. */
export class PropertyBroken extends Error {}

function classify(tally: Tally, label: string, error: unknown): void {
  if (!(error instanceof VimedgeError)) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    throw new PropertyBroken(`${label}: escaped as ${error instanceof Error ? error.constructor.name : typeof error}, `
      + `not VimedgeError:\n${text}`);
  }
  if (error.message.trim().length === 0) throw new PropertyBroken(`${label}: VimedgeError ${error.code} without a message`);
  if (error.message.includes('\n')) throw new PropertyBroken(`${label}: message is not one line: ${error.message}`);
  tally.refused++;
  tally.codes.set(error.code, (tally.codes.get(error.code) ?? 0) + 1);
}

function checkCost(tally: Tally, label: string, inputBytes: number, bound: MemoryBound, { t0, cpu, before }: CaseStart): void {
  const ms = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000;
  const after = process.memoryUsage();
  const buffers = after.arrayBuffers - before.arrayBuffers;
  const rss = after.rss - before.rss;
  tally.maxCaseMs = Math.max(tally.maxCaseMs, ms);
  tally.maxArrayBufferGrowth = Math.max(tally.maxArrayBufferGrowth, buffers);
  tally.maxRssGrowth = Math.max(tally.maxRssGrowth, rss);
  const limit = (bound.factor ?? 64) * inputBytes + (bound.constant ?? 16 * MB);
  // Growth is measured while the result is still referenced, so what the call kept counts; a GC during the
  // call can only lower the figure, so going over the limit means the call really allocated that much.
  if (buffers > limit) {
    throw new PropertyBroken(`${label}: ArrayBuffers grew by ${(buffers / MB).toFixed(1)} MB for a ${inputBytes}-byte input (limit ${(limit / MB).toFixed(1)} MB)`);
  }
  if (rss > limit + (bound.rssSlack ?? 64 * MB)) {
    throw new PropertyBroken(`${label}: RSS grew by ${(rss / MB).toFixed(1)} MB for a ${inputBytes}-byte input`);
  }
  if (cpuMs > SLOW_MS) throw new PropertyBroken(`${label}: took ${cpuMs.toFixed(0)} ms of CPU (${ms.toFixed(0)} ms)`);
}

interface CaseStart {
  before: NodeJS.MemoryUsage;
  t0: number;
  cpu: NodeJS.CpuUsage;
}

function startCase(tally: Tally, label: string): CaseStart {
  tally.count();
  enterCase(label);
  return { before: process.memoryUsage(), t0: performance.now(), cpu: process.cpuUsage() };
}

/** Tallies how the case ended (valid, or `failure`, which must be a one-line VimedgeError), then its cost. */
function endCase(tally: Tally, label: string, inputBytes: number, bound: MemoryBound, start: CaseStart,
                 failure: { error: unknown } | undefined): void {
  leaveCase();
  if (failure === undefined) {
    tally.accepted++;
  } else {
    if (failure.error instanceof PropertyBroken) throw failure.error;
    classify(tally, label, failure.error);
  }
  checkCost(tally, label, inputBytes, bound, start);
}

/**
 * Runs one synchronous case: `run` either returns a result that `validate` accepts (by not throwing; what it
 * returns is ignored), or throws a one-line VimedgeError. Anything else, a hang, a slow case or
 * disproportionate memory growth breaks the property.
 */
export function expectClean<T>(tally: Tally, label: string, inputBytes: number, run: () => T,
                               validate: (result: T) => unknown = () => {}, bound: MemoryBound = {}): void {
  const start = startCase(tally, label);
  let result: T | undefined;
  let failure: { error: unknown } | undefined;
  try {
    result = run();
    validate(result);
  } catch (error) {
    failure = { error };
  }
  endCase(tally, label, inputBytes, bound, start, failure);
  result = undefined;
}

/** expectClean for asynchronous calls (sharp decoding, model loading). */
export async function expectCleanAsync<T>(tally: Tally, label: string, inputBytes: number, run: () => Promise<T>,
                                          validate: (result: T) => unknown = () => {},
                                          bound: MemoryBound = {}): Promise<void> {
  const start = startCase(tally, label);
  let result: T | undefined;
  let failure: { error: unknown } | undefined;
  try {
    result = await run();
    await validate(result);
  } catch (error) {
    failure = { error };
  }
  endCase(tally, label, inputBytes, bound, start, failure);
  result = undefined;
}

/** A validation failure: the parser accepted something it returned in an invalid state. */
export function invalid(problem: string): never {
  throw new PropertyBroken(`accepted, but the result is invalid: ${problem}`);
}

// --- what an accepted checkpoint must be --------------------------------------------------------------------

/** A state_dict as the checkpoint readers return it: string keys, tensors whose data fills their shape. */
export function validStateDict(sd: StateDict): void {
  if (!(sd instanceof Map)) invalid('not a Map');
  for (const [key, t] of sd) {
    if (typeof key !== 'string') invalid(`key ${String(key)}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) invalid(`${key} shape ${t.shape}`);
    if (!(t.data instanceof Float32Array) || t.data.length !== numel(t.shape)) invalid(`${key}: ${t.data?.length} values for [${t.shape}]`);
  }
}

/**
 * A model that loaded must run: one logit per class for a constant image, no trap. Returns whether the logits
 * are finite (weights from a damaged file may be Inf or NaN, and the logits with them).
 */
export function modelRuns({ metadata, model }: LoadedModel): boolean {
  const c = metadata.config;
  const logits = model.forward(new Float32Array(c.channels * c.imageSize * c.imageSize).fill(0.5));
  if (logits.length !== c.numClasses) invalid(`${logits.length} logits for ${c.numClasses} classes`);
  return logits.every(Number.isFinite);
}

// --- byte mutations ---------------------------------------------------------------------------------------

/** A length-like field of a container: where it is, how wide, which byte order. */
export interface Field {
  at: number;
  width: 1 | 2 | 4 | 8;
  littleEndian: boolean;
  name: string;
}

/** What the structural mutations aim at: section boundaries and length fields. */
export interface Layout {
  boundaries: number[];
  fields: Field[];
}

export type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'field'; field: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'copy'; from: number; to: number; length: number };

/** Values that break length fields: zero, one off, the file's size, sign bits, all ones, 2^53. */
export function hostileLength(fileBytes: number): fc.Arbitrary<number> {
  return fc.oneof(
    fc.constantFrom(0, 1, 0x7f, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32, 2 ** 53 - 1,
      fileBytes - 1, fileBytes, fileBytes + 1, fileBytes * 2, fileBytes * 64),
    fc.nat(),
    fc.integer({ min: 0, max: fileBytes + 64 }),
  );
}

/** Mutations of a file of `length` bytes; positions either anywhere or within 2 bytes of a boundary. */
export function mutationArb(length: number, layout: Layout): fc.Arbitrary<Mutation> {
  const anywhere = fc.integer({ min: 0, max: Math.max(0, length - 1) });
  const nearBoundary = layout.boundaries.length === 0 ? anywhere
    : fc.tuple(fc.constantFrom(...layout.boundaries), fc.integer({ min: -2, max: 2 }))
      .map(([b, d]) => Math.min(Math.max(b + d, 0), Math.max(0, length - 1)));
  const position = fc.oneof(anywhere, nearBoundary);
  const options: fc.Arbitrary<Mutation>[] = [
    fc.oneof(anywhere, nearBoundary, fc.constantFrom(...layout.boundaries, 0, length))
      .map((at) => ({ kind: 'truncate' as const, at: Math.min(at, length) })),
    fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('byte' as const), at: position, value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xfe, 0xff) }),
    fc.record({ kind: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({ kind: fc.constant('copy' as const), from: position, to: position, length: fc.integer({ min: 1, max: 256 }) }),
  ];
  if (layout.fields.length > 0) {
    options.push(fc.record({
      kind: fc.constant('field' as const),
      field: fc.integer({ min: 0, max: layout.fields.length - 1 }),
      value: hostileLength(length),
    }));
  }
  return fc.oneof(...options);
}

/** One to four mutations of `original`. */
export function mutationsArb(original: Uint8Array, layout: Layout, max = 4): fc.Arbitrary<Mutation[]> {
  return fc.array(mutationArb(original.length, layout), { minLength: 1, maxLength: max });
}

/** A valid file to start from and the layout its mutations aim at. */
export interface FuzzSeed {
  bytes: Uint8Array;
  layout: Layout;
}

/** Which of `seeds` to mutate (its index) and one to `max` mutations of it. */
export function seedMutationsArb(seeds: readonly FuzzSeed[], max = 4): fc.Arbitrary<[number, Mutation[]]> {
  return fc.nat({ max: seeds.length - 1 }).chain((i) => fc.tuple(fc.constant(i), mutationsArb(seeds[i].bytes, seeds[i].layout, max)));
}

/** What a seedMutationsArb value stands for: which seed, its mutated bytes, the mutations in words. */
export function mutate(seeds: readonly FuzzSeed[], [which, mutations]: [number, Mutation[]]):
    { which: number; bytes: Uint8Array; description: string } {
  const { bytes, layout } = seeds[which];
  return { which, bytes: applyMutations(bytes, layout, mutations), description: describeMutations(mutations, layout) };
}

/** Where a file is cut: a byte either side of every section boundary, and the boundary itself. */
export function truncationPoints({ bytes, layout }: FuzzSeed): number[] {
  return [...new Set(layout.boundaries.flatMap((b) => [b - 1, b, b + 1]))].filter((at) => at >= 0 && at < bytes.length);
}

export function writeField(bytes: Uint8Array, field: Field, value: number): void {
  if (field.at + field.width > bytes.length) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const v = Math.max(0, Math.floor(value));
  switch (field.width) {
    case 1: bytes[field.at] = v & 0xff; break;
    case 2: view.setUint16(field.at, v & 0xffff, field.littleEndian); break;
    case 4: view.setUint32(field.at, v % 2 ** 32, field.littleEndian); break;
    case 8: view.setBigUint64(field.at, BigInt(Math.min(v, 2 ** 64 - 1)) & 0xffffffffffffffffn, field.littleEndian); break;
  }
}

/** Applies mutations in order (positions are clamped to the bytes there are at that point). */
export function applyMutations(original: Uint8Array, layout: Layout, mutations: Mutation[]): Uint8Array {
  let bytes = Uint8Array.from(original);
  const clamp = (at: number) => Math.min(Math.max(at, 0), bytes.length);
  for (const m of mutations) {
    switch (m.kind) {
      case 'truncate': bytes = bytes.slice(0, clamp(m.at)); break;
      case 'flip': if (m.at < bytes.length) bytes[m.at] ^= 1 << m.bit; break;
      case 'byte': if (m.at < bytes.length) bytes[m.at] = m.value; break;
      case 'field': writeField(bytes, layout.fields[m.field], m.value); break;
      case 'insert': {
        const at = clamp(m.at);
        const out = new Uint8Array(bytes.length + m.bytes.length);
        out.set(bytes.subarray(0, at));
        out.set(m.bytes, at);
        out.set(bytes.subarray(at), at + m.bytes.length);
        bytes = out;
        break;
      }
      case 'delete': {
        const at = clamp(m.at);
        const end = clamp(at + m.length);
        const out = new Uint8Array(bytes.length - (end - at));
        out.set(bytes.subarray(0, at));
        out.set(bytes.subarray(end), at);
        bytes = out;
        break;
      }
      case 'copy': {
        const from = clamp(m.from);
        const chunk = bytes.slice(from, clamp(from + m.length));
        const to = clamp(m.to);
        bytes.set(chunk.subarray(0, bytes.length - to), to);
        break;
      }
    }
  }
  return bytes;
}

export function describeMutations(mutations: Mutation[], layout: Layout): string {
  return mutations.map((m) => {
    switch (m.kind) {
      case 'field': return `${layout.fields[m.field].name}=${m.value}`;
      case 'insert': return `insert ${m.bytes.length} at ${m.at}`;
      case 'copy': return `copy ${m.length} ${m.from}->${m.to}`;
      case 'delete': return `delete ${m.length} at ${m.at}`;
      case 'flip': return `flip ${m.at}.${m.bit}`;
      case 'byte': return `byte ${m.at}=${m.value}`;
      case 'truncate': return `truncate ${m.at}`;
    }
  }).join(', ');
}

// --- container layouts ------------------------------------------------------------------------------------

const u16le = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const u32le = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
const u32be = (b: Uint8Array, at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

export interface ZipEntry {
  name: string;
  localHeader: number;
  dataStart: number;
  dataEnd: number;
  centralHeader: number;
}

/** Entries of a well-formed (stored) zip archive, from its central directory. */
export function zipEntries(bytes: Uint8Array): { entries: ZipEntry[]; centralDirectory: number; eocd: number } {
  let eocd = bytes.length - 22;
  while (eocd >= 0 && u32le(bytes, eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error('fixture is not a zip archive');
  const count = u16le(bytes, eocd + 10);
  const centralDirectory = u32le(bytes, eocd + 16);
  const entries: ZipEntry[] = [];
  let at = centralDirectory;
  for (let i = 0; i < count; i++) {
    const nameLength = u16le(bytes, at + 28);
    const extra = u16le(bytes, at + 30);
    const comment = u16le(bytes, at + 32);
    const localHeader = u32le(bytes, at + 42);
    const size = u32le(bytes, at + 20);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    const dataStart = localHeader + 30 + u16le(bytes, localHeader + 26) + u16le(bytes, localHeader + 28);
    entries.push({ name, localHeader, dataStart, dataEnd: dataStart + size, centralHeader: at });
    at += 46 + nameLength + extra + comment;
  }
  return { entries, centralDirectory, eocd };
}

/** Every header start, data start and end, and every size, offset and count field of a zip archive. */
export function zipLayout(bytes: Uint8Array): Layout {
  const { entries, centralDirectory, eocd } = zipEntries(bytes);
  const boundaries = [centralDirectory, eocd, bytes.length];
  const fields: Field[] = [];
  const le = (at: number, width: 2 | 4, name: string) => fields.push({ at, width, littleEndian: true, name });
  for (const e of entries) {
    boundaries.push(e.localHeader, e.dataStart, e.dataEnd, e.centralHeader);
    le(e.localHeader + 18, 4, `${e.name} local compressed size`);
    le(e.localHeader + 22, 4, `${e.name} local size`);
    le(e.localHeader + 26, 2, `${e.name} local name length`);
    le(e.localHeader + 28, 2, `${e.name} local extra length`);
    le(e.centralHeader + 20, 4, `${e.name} compressed size`);
    le(e.centralHeader + 24, 4, `${e.name} size`);
    le(e.centralHeader + 28, 2, `${e.name} name length`);
    le(e.centralHeader + 30, 2, `${e.name} extra length`);
    le(e.centralHeader + 42, 4, `${e.name} local header offset`);
  }
  le(eocd + 8, 2, 'EOCD entries on disk');
  le(eocd + 10, 2, 'EOCD entries');
  le(eocd + 12, 4, 'EOCD directory size');
  le(eocd + 16, 4, 'EOCD directory offset');
  le(eocd + 20, 2, 'EOCD comment length');
  return { boundaries, fields };
}

/** Argument bytes of the pickle opcodes torch.save writes (protocol 2) and a few more; -1: newline-terminated. */
const PICKLE_ARGS: Record<number, number | 'u8len' | 'u32len' | 'u64len' | 'lines2'> = {
  0x80: 1, 0x28: 0, 0x29: 0, 0x2e: 0, 0x30: 0, 0x31: 0, 0x4e: 0, 0x88: 0, 0x89: 0, 0x5d: 0, 0x7d: 0,
  0x61: 0, 0x65: 0, 0x73: 0, 0x75: 0, 0x74: 0, 0x85: 0, 0x86: 0, 0x87: 0, 0x52: 0, 0x81: 0, 0x62: 0, 0x51: 0,
  0x94: 0, 0x93: 0, 0x92: 0,
  0x4a: 4, 0x4b: 1, 0x4d: 2, 0x47: 8, 0x71: 1, 0x72: 4, 0x68: 1, 0x6a: 4, 0x95: 8,
  0x8a: 'u8len', 0x8c: 'u8len', 0x43: 'u8len', 0x8b: 'u32len', 0x58: 'u32len', 0x42: 'u32len',
  0x8d: 'u64len', 0x8e: 'u64len', 0x96: 'u64len', 0x63: 'lines2',
};

export interface PickleOp {
  at: number;
  op: number;
  /** Where the argument bytes start and end. */
  argAt: number;
  end: number;
}

/** Opcode boundaries of a pickle stream (stops at the first opcode it does not know). */
export function pickleOps(bytes: Uint8Array): PickleOp[] {
  const ops: PickleOp[] = [];
  let at = 0;
  while (at < bytes.length) {
    const op = bytes[at];
    const kind = PICKLE_ARGS[op];
    if (kind === undefined) break;
    let argAt = at + 1;
    let end: number;
    if (typeof kind === 'number') end = argAt + kind;
    else if (kind === 'u8len') { end = argAt + 1 + bytes[argAt]; }
    else if (kind === 'u32len') { end = argAt + 4 + u32le(bytes, argAt); }
    else if (kind === 'u64len') { end = argAt + 8 + u32le(bytes, argAt); }
    else {
      const first = bytes.indexOf(0x0a, argAt);
      end = bytes.indexOf(0x0a, first + 1) + 1;
    }
    ops.push({ at, op, argAt, end });
    if (op === 0x2e) break;
    at = end;
  }
  return ops;
}

/** Length and memo-index fields of a pickle, as mutation targets. */
export function pickleLayout(bytes: Uint8Array): Layout {
  const ops = pickleOps(bytes);
  const fields: Field[] = [];
  for (const o of ops) {
    const name = `op 0x${o.op.toString(16)} at ${o.at}`;
    if ([0x58, 0x42, 0x8b, 0x72, 0x6a, 0x4a].includes(o.op)) fields.push({ at: o.argAt, width: 4, littleEndian: true, name });
    if ([0x8d, 0x8e, 0x96, 0x95].includes(o.op)) fields.push({ at: o.argAt, width: 8, littleEndian: true, name });
    if ([0x8c, 0x43, 0x8a, 0x71, 0x68, 0x4b].includes(o.op)) fields.push({ at: o.argAt, width: 1, littleEndian: true, name });
    if (o.op === 0x4d) fields.push({ at: o.argAt, width: 2, littleEndian: true, name });
  }
  return { boundaries: ops.map((o) => o.at), fields };
}

/** PNG chunk boundaries, chunk length fields and the IHDR size fields. */
export function pngLayout(bytes: Uint8Array): Layout {
  const boundaries = [8];
  const fields: Field[] = [];
  let at = 8;
  while (at + 8 <= bytes.length) {
    const length = u32be(bytes, at);
    const type = new TextDecoder('latin1').decode(bytes.subarray(at + 4, at + 8));
    fields.push({ at, width: 4, littleEndian: false, name: `${type} length` });
    if (type === 'IHDR') {
      fields.push({ at: at + 8, width: 4, littleEndian: false, name: 'IHDR width' });
      fields.push({ at: at + 12, width: 4, littleEndian: false, name: 'IHDR height' });
    }
    boundaries.push(at + 8, at + 8 + length, at + 12 + length);
    at += 12 + length;
    if (type === 'IEND') break;
  }
  return { boundaries, fields };
}

/** JPEG marker segments, their length fields and the frame size (SOFn height and width). */
export function jpegLayout(bytes: Uint8Array): Layout {
  const boundaries = [0, 2];
  const fields: Field[] = [];
  let at = 2;
  while (at + 4 <= bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1];
    if (marker === 0xd9) break;
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    const name = `marker ff${marker.toString(16)} at ${at}`;
    fields.push({ at: at + 2, width: 2, littleEndian: false, name: `${name} length` });
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      fields.push({ at: at + 5, width: 2, littleEndian: false, name: 'SOF height' });
      fields.push({ at: at + 7, width: 2, littleEndian: false, name: 'SOF width' });
    }
    boundaries.push(at, at + 4, at + 2 + length);
    if (marker === 0xda) break; // entropy-coded data follows
    at += 2 + length;
  }
  boundaries.push(bytes.length - 2, bytes.length);
  return { boundaries, fields };
}

/** GIF screen size, block boundaries, image descriptors' sizes (16-bit little-endian). */
export function gifLayout(bytes: Uint8Array): Layout {
  const fields: Field[] = [
    { at: 6, width: 2, littleEndian: true, name: 'screen width' },
    { at: 8, width: 2, littleEndian: true, name: 'screen height' },
  ];
  const boundaries = [6, 10, 13];
  let at = 13;
  if (bytes[10] & 0x80) at += 3 << ((bytes[10] & 7) + 1);
  boundaries.push(at);
  while (at < bytes.length) {
    const kind = bytes[at];
    boundaries.push(at);
    if (kind === 0x3b) break;
    if (kind === 0x21) {
      at += 2;
    } else if (kind === 0x2c) {
      fields.push({ at: at + 5, width: 2, littleEndian: true, name: `frame width at ${at}` });
      fields.push({ at: at + 7, width: 2, littleEndian: true, name: `frame height at ${at}` });
      const flags = bytes[at + 9];
      at += 10;
      if (flags & 0x80) at += 3 << ((flags & 7) + 1);
      at += 1; // LZW minimum code size
    } else {
      break;
    }
    while (at < bytes.length && bytes[at] !== 0) {
      fields.push({ at, width: 1, littleEndian: true, name: `sub-block length at ${at}` });
      at += bytes[at] + 1;
    }
    at += 1;
  }
  return { boundaries, fields };
}

// --- .vimq ------------------------------------------------------------------------------------------------

/** Recomputes a .vimq's checksum (SHA-256 of the file with bytes 24..56 zeroed), as a hostile writer would. */
export function resignVimq(file: Uint8Array): Uint8Array {
  if (file.length < 56) return file;
  const out = Uint8Array.from(file);
  out.fill(0, 24, 56);
  out.set(createHash('sha256').update(out).digest(), 24);
  return out;
}

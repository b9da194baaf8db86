/**
 * .safetensors: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}`, then the data
 * section, which the tensors must tile exactly (sorted, no gaps, no overlaps), all little-endian.
 */
import { fail } from '../errors.js';
import { decodeFloats, FLOAT_DTYPE_BYTES, numel, shapeString, type FloatDtype, type StateDict } from '../tensor.js';

const DTYPES: ReadonlyMap<string, FloatDtype> = new Map([
  ['F32', 'float32'], ['F16', 'float16'], ['BF16', 'bfloat16'], ['F64', 'float64'],
]);

/** The reference implementation's limit; a larger header is an attack on the JSON parser, not a model. */
const MAX_HEADER_BYTES = 100_000_000;

interface Entry {
  key: string;
  dtype: FloatDtype;
  shape: number[];
  begin: number;
  end: number;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function readSafetensors(bytes: Uint8Array, name = 'checkpoint'): StateDict {
  const bad = (problem: string): never => fail('BAD_CHECKPOINT', `${name}: ${problem}`);
  if (bytes.length < 8) bad(`${bytes.length} bytes is too short for a safetensors file (8-byte header length first)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = view.getUint32(4, true) * 2 ** 32 + view.getUint32(0, true);
  if (headerBytes > bytes.length - 8) bad(`header length ${headerBytes} exceeds the ${bytes.length - 8} bytes after it (truncated?)`);
  if (headerBytes > MAX_HEADER_BYTES) bad(`header length ${headerBytes} exceeds the ${MAX_HEADER_BYTES}-byte limit`);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerBytes)));
  } catch (e) {
    return bad(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header is not a JSON object');

  const dataStart = 8 + headerBytes;
  const dataBytes = bytes.length - dataStart;
  const entries: Entry[] = [];
  for (const [key, info] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      checkMetadata(info, bad);
      continue;
    }
    entries.push(parseEntry(key, info, dataBytes, bad));
  }

  // The tensors must tile the data section: this rules out overlaps (aliasing) and hidden bytes in gaps.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous = '';
  for (const entry of entries) {
    if (entry.begin < covered) bad(`tensor '${entry.key}' data_offsets overlap tensor '${previous}'`);
    if (entry.begin > covered) bad(`${entry.begin - covered} unused bytes before tensor '${entry.key}' (data_offsets leave a gap)`);
    covered = entry.end;
    previous = entry.key;
  }
  if (covered !== dataBytes) bad(`data section has ${dataBytes} bytes but the tensors cover ${covered}`);

  const sd: StateDict = new Map();
  for (const entry of entries) {
    const data = decodeFloats(bytes.subarray(dataStart + entry.begin, dataStart + entry.end), entry.dtype, true);
    sd.set(entry.key, { shape: entry.shape, data });
  }
  return sd;
}

function checkMetadata(info: unknown, bad: (problem: string) => never): void {
  const isStringMap = typeof info === 'object' && info !== null && !Array.isArray(info)
    && Object.values(info).every((v) => typeof v === 'string');
  if (!isStringMap) bad('__metadata__ must be an object of string values');
}

function parseEntry(key: string, info: unknown, dataBytes: number, bad: (problem: string) => never): Entry {
  if (typeof info !== 'object' || info === null || Array.isArray(info)) bad(`tensor '${key}' header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string') bad(`tensor '${key}' has no dtype string`);
  const floatDtype = DTYPES.get(dtype as string)
    ?? bad(`tensor '${key}' has dtype ${String(dtype)}; supported: ${[...DTYPES.keys()].join(', ')}`);
  if (!Array.isArray(shape) || !shape.every(isCount)) bad(`tensor '${key}' shape is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    bad(`tensor '${key}' data_offsets is not [begin, end] with non-negative integers`);
  }
  const [begin, end] = offsets as number[];
  if (begin > end) bad(`tensor '${key}' data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataBytes) bad(`tensor '${key}' data_offsets [${begin}, ${end}] run past the ${dataBytes}-byte data section`);
  const expected = numel(shape as number[]) * FLOAT_DTYPE_BYTES[floatDtype];
  if (expected !== end - begin) {
    bad(`tensor '${key}' shape ${shapeString(shape as number[])} of ${dtype} needs ${expected} bytes but data_offsets span ${end - begin}`);
  }
  return { key, dtype: floatDtype, shape: shape as number[], begin, end };
}

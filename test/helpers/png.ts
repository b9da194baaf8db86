// PNG files built byte by byte: the images no encoder writes (headers that lie about the size, decompression
// bombs, 16-bit samples, extra chunks), and plain 8-bit ones of given pixels.
import { createDeflate, crc32, deflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from('\x89PNG\r\n\x1a\n', 'latin1');

/** One chunk: data length, type, data, CRC-32 of type and data. */
export function pngChunk(kind: string, data: Uint8Array): Buffer {
  const c = Buffer.alloc(data.length + 12);
  c.writeUInt32BE(data.length, 0);
  c.write(kind, 4, 'latin1');
  c.set(data, 8);
  c.writeUInt32BE(crc32(c.subarray(4, 8 + data.length)), 8 + data.length);
  return c;
}

/** IHDR's data: 1-bit greyscale unless told otherwise; deflate, no filter, no interlace. */
export function ihdr(width: number, height: number, depth = 1, colour = 0): Buffer {
  const h = Buffer.alloc(13);
  h.writeUInt32BE(width, 0);
  h.writeUInt32BE(height, 4);
  h.set([depth, colour, 0, 0, 0], 8);
  return h;
}

/** A PNG of this IHDR data and these chunks, closed by IEND. */
export function png(header: Uint8Array, ...chunks: Uint8Array[]): Buffer {
  return Buffer.concat([SIGNATURE, pngChunk('IHDR', header), ...chunks, pngChunk('IEND', new Uint8Array(0))]);
}

/** Only the header of a bomb: IHDR claiming width×height, one small IDAT. A few hundred bytes. */
export function headerOnlyPng(width: number, height: number): Buffer {
  return png(ihdr(width, height), pngChunk('IDAT', deflateSync(Buffer.alloc(4096))));
}

/** A valid 1-bit greyscale PNG of side×side zeros, deflated 1000 rows at a time (never all in memory). */
export async function bombPng(side: number): Promise<Buffer> {
  const row = Buffer.alloc(1 + Math.ceil(side / 8)); // filter byte 0 + packed pixels
  const block = Buffer.concat(new Array(1000).fill(row));
  const deflate = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise((resolve) => deflate.on('end', resolve));
  for (let rows = 0; rows < side; rows += 1000) {
    if (!deflate.write(rows + 1000 <= side ? block : block.subarray(0, (side - rows) * row.length))) {
      await new Promise((resolve) => deflate.once('drain', resolve));
    }
  }
  deflate.end();
  await done;
  return png(ihdr(side, side), pngChunk('IDAT', Buffer.concat(parts)));
}

/** An 8-bit greyscale or RGB PNG of these pixels (rows unfiltered), e.g. the input `vimedge bench` times. */
export function rawPng(image: { width: number; height: number; channels: 1 | 3; data: Uint8Array }): Buffer {
  const stride = image.width * image.channels;
  const rows = Buffer.alloc(image.height * (1 + stride));
  for (let y = 0; y < image.height; y++) rows.set(image.data.subarray(y * stride, (y + 1) * stride), y * (1 + stride) + 1);
  return png(ihdr(image.width, image.height, 8, image.channels === 3 ? 2 : 0), pngChunk('IDAT', deflateSync(rows)));
}

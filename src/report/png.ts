/**
 * A Vega chart spec as a PNG: rendered to SVG by Vega (no canvas needed), rasterised by sharp. Both are
 * optional packages of vimedge, loaded here only (`eval --plot`, `outliers`), so that installing vimedge
 * does not pull in Vega's ~60 packages; a missing one is a one-line error saying what to install.
 */
import type { Spec } from 'vega';
import { fail } from '../errors.js';

async function optional<T>(load: () => Promise<T>, name: string): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    return fail('BAD_ARGUMENT', `drawing a chart needs the optional package ${name}: npm install ${name}`);
  }
}

export async function vegaPng(spec: Spec): Promise<Uint8Array> {
  const vega = await optional(() => import('vega'), 'vega');
  const sharp = (await optional(() => import('sharp'), 'sharp')).default;
  const svg = await new vega.View(vega.parse(spec), { renderer: 'none' }).toSVG();
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}

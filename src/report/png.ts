/** Charts as PNG: a Vega spec rendered to SVG without a canvas, rasterised by sharp (no native canvas build). */
import * as vega from 'vega';
import sharp from 'sharp';

export async function vegaPng(spec: vega.Spec): Promise<Uint8Array> {
  const svg = await new vega.View(vega.parse(spec), { renderer: 'none' }).toSVG();
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}

/**
 * The outlier picture as a PNG: one heat map per site, direction and view (max |x| per channel or per token,
 * rows = blocks), before and after the transforms side by side with one shared log colour scale per site.
 * Drawn with Vega (a declarative chart spec rendered to SVG without a canvas) and rasterised by sharp: the
 * same pair the confusion plot uses, so no new dependency and no native canvas build.
 */
import type * as vega from 'vega';
import { chartPng } from '../eval/chart-png.js';
import type { OutlierReport, SiteProfile } from './outliers.js';

interface Cell { panel: number; block: number; index: number; value: number }
interface Panel { panel: number; title: string; lo: number; hi: number; axis: string; width: number }

const PANEL_HEIGHT = 150;

function cells(p: SiteProfile, view: 'channel' | 'token', panel: number): Cell[] {
  return p[view].flatMap((row, block) => row.map((value, index) => ({ panel, block, index, value: Math.max(value, 1e-6) })));
}

export async function outlierPng(report: OutlierReport): Promise<Uint8Array> {
  const data: Cell[] = [];
  const panels: Panel[] = [];
  report.before.forEach((before, s) => {
    const after = report.after[s];
    for (const view of ['channel', 'token'] as const) {
      const values = [...before[view].flat(), ...after[view].flat()].map((v) => Math.max(v, 1e-6));
      const lo = Math.min(...values), hi = Math.max(...values);
      for (const [when, p] of [['before', before], [`after ${report.method}`, after]] as const) {
        const panel = panels.length;
        panels.push({ panel, title: `${p.label}, max|x| per ${view}, ${when}`, lo, hi, axis: view,
          width: view === 'channel' ? 360 : 200 });
        data.push(...cells(p, view, panel));
      }
    }
  });
  const spec: vega.Spec = {
    padding: 10,
    title: { text: `Outliers per site: max |x| over ${report.images} calibration images (rows: blocks; log colour, shared before/after)`, fontSize: 16 },
    layout: { columns: 4, padding: { row: 30, column: 25 } },
    data: [{ name: 'cells', values: data }, { name: 'panels', values: panels }],
    marks: [{
      type: 'group',
      from: { facet: { name: 'panelCells', data: 'cells', groupby: 'panel' } },
      sort: { field: 'datum.panel' },
      encode: { update: {
        width: { signal: "data('panels')[datum.panel].width" },
        height: { value: PANEL_HEIGHT },
      } },
      signals: [{ name: 'info', update: "data('panels')[parent.panel]" }],
      title: { text: { signal: 'info.title' }, fontSize: 11 },
      scales: [
        { name: 'x', type: 'band', domain: { data: 'panelCells', field: 'index', sort: true }, range: [0, { signal: 'info.width' }] },
        { name: 'y', type: 'band', domain: { data: 'panelCells', field: 'block', sort: true }, range: [0, PANEL_HEIGHT] },
        { name: 'color', type: 'log', domain: { signal: '[info.lo, info.hi]' }, range: { scheme: 'viridis' } },
      ],
      axes: [
        { orient: 'bottom', scale: 'x', title: { signal: 'info.axis' }, labelOverlap: true, values: { signal: "sequence(0, length(domain('x')), ceil(length(domain('x')) / 8))" } },
        { orient: 'left', scale: 'y', title: 'block', labelOverlap: true },
      ],
      legends: [{ fill: 'color', type: 'gradient', direction: 'vertical', gradientLength: PANEL_HEIGHT - 20, format: '.2g' }],
      marks: [{
        type: 'rect', from: { data: 'panelCells' },
        encode: { enter: {
          x: { scale: 'x', field: 'index' }, width: { scale: 'x', band: 1 },
          y: { scale: 'y', field: 'block' }, height: { scale: 'y', band: 1 },
          fill: { scale: 'color', field: 'value' },
        } },
      }],
    }],
  };
  return chartPng(spec);
}

/** The confusion matrix as a PNG: a Vega heat map (chart-png.ts). */
import type * as vega from 'vega';
import { chartPng } from './chart-png.js';
import type { EvalSummary } from './metrics.js';

export async function confusionPng(summary: EvalSummary, labels: string[], title: string): Promise<Uint8Array> {
  const cells = summary.confusion.flatMap((row, i) => row.map((count, j) => ({
    truth: `${i} ${labels[i]}`, predicted: `${j} ${labels[j]}`, count,
    share: count / Math.max(1, row.reduce((a, b) => a + b, 0)),
  })));
  const spec: vega.Spec = {
    width: 36 * labels.length, height: 36 * labels.length, padding: 10,
    title: { text: title },
    data: [{ name: 'cells', values: cells }],
    scales: [
      { name: 'x', type: 'band', domain: { data: 'cells', field: 'predicted' }, range: 'width' },
      { name: 'y', type: 'band', domain: { data: 'cells', field: 'truth' }, range: 'height' },
      { name: 'color', type: 'linear', domain: [0, 1], range: { scheme: 'blues' } },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: 'predicted', labelAngle: -45, labelAlign: 'right' },
      { orient: 'left', scale: 'y', title: 'true class' },
    ],
    marks: [
      { type: 'rect', from: { data: 'cells' }, encode: { enter: {
        x: { scale: 'x', field: 'predicted' }, width: { scale: 'x', band: 1 },
        y: { scale: 'y', field: 'truth' }, height: { scale: 'y', band: 1 },
        fill: { scale: 'color', field: 'share' } } } },
      { type: 'text', from: { data: 'cells' }, encode: { enter: {
        x: { scale: 'x', field: 'predicted', band: 0.5 }, y: { scale: 'y', field: 'truth', band: 0.5 },
        text: { field: 'count' }, align: { value: 'center' }, baseline: { value: 'middle' }, fontSize: { value: 9 },
        fill: { signal: "datum.share > 0.5 ? 'white' : 'black'" } } } },
    ],
  };
  return chartPng(spec);
}

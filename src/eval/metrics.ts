/** Classification metrics accumulated image by image: top-1, top-5, per-class accuracy, confusion matrix. */

export interface EvalSummary {
  images: number;
  top1: number;            // fraction in 0..1
  top5: number;
  per_class: { label: string; images: number; top1: number }[];
  confusion: number[][];   // [true class][predicted class] counts
  predictions: number[];   // top-1 class per image, in dataset order
}

export class Metrics {
  private readonly confusion: number[][];
  private readonly predictions: number[] = [];
  private top5Hits = 0;

  constructor(private readonly labels: string[]) {
    this.confusion = labels.map(() => new Array(labels.length).fill(0));
  }

  add(logits: ArrayLike<number>, truth: number): void {
    const order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
    this.confusion[truth][order[0]]++;
    this.predictions.push(order[0]);
    if (order.slice(0, 5).includes(truth)) this.top5Hits++;
  }

  summary(): EvalSummary {
    const images = this.predictions.length;
    const correct = this.confusion.reduce((s, row, i) => s + row[i], 0);
    return {
      images,
      top1: correct / images,
      top5: this.top5Hits / images,
      per_class: this.labels.map((label, i) => {
        const n = this.confusion[i].reduce((a, b) => a + b, 0);
        return { label, images: n, top1: n ? this.confusion[i][i] / n : 0 };
      }),
      confusion: this.confusion.map((row) => row.slice()),
      predictions: this.predictions.slice(),
    };
  }
}

/** The confusion matrix as aligned text, rows = true class, columns = predicted class. */
export function formatConfusion(summary: EvalSummary, labels: string[]): string {
  const width = Math.max(5, ...summary.confusion.flat().map((v) => String(v).length + 1));
  const name = Math.max(...labels.map((l) => l.length));
  const header = ' '.repeat(name + 2) + labels.map((_, j) => String(j).padStart(width)).join('');
  const rows = summary.confusion.map((row, i) =>
    `${String(i).padStart(2)} ${labels[i].padEnd(name)}${row.map((v) => String(v).padStart(width)).join('')}`);
  return [header, ...rows].join('\n');
}

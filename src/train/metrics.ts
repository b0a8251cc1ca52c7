// Classification metrics accumulated over batches: mean loss, top-1 and top-k accuracy,
// per-class accuracy and the confusion matrix (rows = true class, columns = predicted).

export interface ClassificationResult {
  count: number;
  loss: number;
  acc: number;
  /** Top-k accuracy for k = topK (5 by default, or the number of classes when fewer). */
  topk: number;
  k: number;
  perClassAcc: number[];
  /** confusion[true][pred] counts. */
  confusion: number[][];
}

/** A loss for a one-line report: 4 decimals, or 4 significant digits once it is huge (toFixed switches to 1.2e+35 by itself past 1e21). */
export function formatLoss(x: number): string {
  return Math.abs(x) < 1e5 || !Number.isFinite(x) ? x.toFixed(4) : x.toExponential(3);
}

export class ClassificationMetrics {
  private lossSum = 0;
  private n = 0;
  private correct = 0;
  private correctK = 0;
  readonly k: number;
  readonly confusion: number[][];

  constructor(
    readonly numClasses: number,
    topK = 5,
  ) {
    this.k = Math.max(1, Math.min(topK, numClasses));
    this.confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  }

  /** Add a batch: logits [N, C] row-major, integer targets, and the batch's mean loss. */
  update(logits: Float32Array, targets: ArrayLike<number>, meanLoss: number): void {
    const N = targets.length,
      C = this.numClasses;
    if (logits.length !== N * C) throw new RangeError(`metrics: ${logits.length} logits for ${N} samples of ${C} classes`);
    this.lossSum += meanLoss * N;
    this.n += N;
    for (let i = 0; i < N; i++) {
      const row = logits.subarray(i * C, (i + 1) * C);
      const t = targets[i];
      let best = 0;
      for (let c = 1; c < C; c++) if (row[c] > row[best]) best = c;
      this.confusion[t][best]++;
      if (best === t) this.correct++;
      // rank of the target: classes scoring strictly higher (ties resolved in the target's favour after lower indices)
      let higher = 0;
      const v = row[t];
      for (let c = 0; c < C; c++) if (row[c] > v || (row[c] === v && c < t)) higher++;
      if (higher < this.k) this.correctK++;
    }
  }

  get count(): number {
    return this.n;
  }

  result(): ClassificationResult {
    const n = Math.max(1, this.n);
    return {
      count: this.n,
      loss: this.lossSum / n,
      acc: this.correct / n,
      topk: this.correctK / n,
      k: this.k,
      perClassAcc: this.confusion.map((row, i) => {
        const tot = row.reduce((a, b) => a + b, 0);
        return tot ? row[i] / tot : NaN;
      }),
      confusion: this.confusion.map((r) => [...r]),
    };
  }

  /** Running sums, to save mid-epoch and restore on resume. */
  getState(): { lossSum: number; n: number; correct: number; correctK: number; confusion: number[][] } {
    return { lossSum: this.lossSum, n: this.n, correct: this.correct, correctK: this.correctK, confusion: this.confusion.map((r) => [...r]) };
  }

  setState(s: ReturnType<ClassificationMetrics['getState']>): void {
    this.lossSum = s.lossSum;
    this.n = s.n;
    this.correct = s.correct;
    this.correctK = s.correctK;
    s.confusion.forEach((r, i) => r.forEach((v, j) => (this.confusion[i][j] = v)));
  }
}

/** Indices of the k largest values of a row, best first (ties: lower index first). */
export function topKIndices(row: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: row.length }, (_, i) => i);
  idx.sort((a, b) => row[b] - row[a] || a - b);
  return idx.slice(0, Math.min(k, row.length));
}

/** Softmax of one row (float64, max-subtracted). */
export function softmaxRow(row: ArrayLike<number>): number[] {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > m) m = row[i];
  const e = Array.from({ length: row.length }, (_, i) => Math.exp(row[i] - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** A fixed-width text table of the confusion matrix with per-class accuracy. */
export function formatConfusion(r: ClassificationResult, classes: readonly string[]): string {
  const names = classes.map((c) => (c.length > 12 ? c.slice(0, 11) + '…' : c));
  const w = Math.max(5, ...r.confusion.flat().map((v) => String(v).length)) + 1;
  const nw = Math.max(...names.map((n) => n.length), 10);
  const lines = [`${'true \\ pred'.padEnd(nw)} ${r.confusion.map((_, j) => String(j).padStart(w)).join('')}   acc`];
  r.confusion.forEach((row, i) => {
    lines.push(
      `${names[i].padEnd(nw)} ${row.map((v) => String(v).padStart(w)).join('')}  ${Number.isNaN(r.perClassAcc[i]) ? '   -' : r.perClassAcc[i].toFixed(3)}`,
    );
  });
  return lines.join('\n');
}

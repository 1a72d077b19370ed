// The standard metrics of small industry models. Classification: accuracy, and precision,
// recall and F1 macro-averaged over the classes; AUC (binary: the score of the positive class;
// more classes: one-vs-rest, macro-averaged). Regression: MSE, MAE, R².
export type Metric = 'accuracy' | 'precision' | 'recall' | 'f1' | 'auc' | 'mse' | 'mae' | 'r2';
export const METRICS: Metric[] = ['accuracy', 'precision', 'recall', 'f1', 'auc', 'mse', 'mae', 'r2'];
export const CLASSIFICATION: ReadonlySet<Metric> = new Set(['accuracy', 'precision', 'recall', 'f1', 'auc']);

/** scores: one row of `classes` values per sample (a single column is a binary probability). */
export function predictedClasses(scores: Float32Array, classes: number): Int32Array {
  const n = scores.length / classes;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (classes === 1) {
      out[i] = scores[i] >= 0.5 ? 1 : 0;
      continue;
    }
    let best = 0;
    for (let k = 1; k < classes; k++) if (scores[i * classes + k] > scores[i * classes + best]) best = k;
    out[i] = best;
  }
  return out;
}

export function accuracy(pred: ArrayLike<number>, labels: ArrayLike<number>): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) ok++;
  return ok / labels.length;
}

/** Macro-averaged precision, recall and F1 over the classes present in labels or predictions. */
export function precisionRecallF1(pred: ArrayLike<number>, labels: ArrayLike<number>): { precision: number; recall: number; f1: number } {
  const classes = new Set<number>();
  for (let i = 0; i < labels.length; i++) {
    classes.add(labels[i]);
    classes.add(pred[i]);
  }
  let p = 0;
  let r = 0;
  let f = 0;
  for (const c of classes) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < labels.length; i++) {
      if (pred[i] === c && labels[i] === c) tp++;
      else if (pred[i] === c) fp++;
      else if (labels[i] === c) fn++;
    }
    const pc = tp + fp ? tp / (tp + fp) : 0;
    const rc = tp + fn ? tp / (tp + fn) : 0;
    p += pc;
    r += rc;
    f += pc + rc ? (2 * pc * rc) / (pc + rc) : 0;
  }
  const k = classes.size || 1;
  return { precision: p / k, recall: r / k, f1: f / k };
}

/** Area under the ROC curve of scores for positives (label true), ties counted half (Mann-Whitney). */
export function binaryAuc(scores: ArrayLike<number>, positive: ArrayLike<boolean>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSumPos = 0;
  let nPos = 0;
  let i = 0;
  while (i < idx.length) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (positive[idx[k]]) {
      rankSumPos += rank;
      nPos++;
    }
    i = j + 1;
  }
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export function auc(scores: Float32Array, classes: number, labels: ArrayLike<number>): number {
  const n = labels.length;
  if (classes <= 2) {
    const s = new Float64Array(n);
    for (let i = 0; i < n; i++) s[i] = classes === 1 ? scores[i] : scores[i * 2 + 1];
    return binaryAuc(s, Array.from(labels, (l) => l === 1));
  }
  let sum = 0;
  let used = 0;
  for (let c = 0; c < classes; c++) {
    const s = new Float64Array(n);
    for (let i = 0; i < n; i++) s[i] = scores[i * classes + c];
    const a = binaryAuc(s, Array.from(labels, (l) => l === c));
    if (!Number.isNaN(a)) {
      sum += a;
      used++;
    }
  }
  return used ? sum / used : NaN;
}

export function regression(pred: ArrayLike<number>, target: ArrayLike<number>): { mse: number; mae: number; r2: number } {
  const n = target.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += target[i];
  mean /= n;
  let se = 0;
  let ae = 0;
  let tot = 0;
  for (let i = 0; i < n; i++) {
    const d = pred[i] - target[i];
    se += d * d;
    ae += Math.abs(d);
    tot += (target[i] - mean) ** 2;
  }
  return { mse: se / n, mae: ae / n, r2: tot === 0 ? NaN : 1 - se / tot };
}

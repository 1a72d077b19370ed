// What `edge-model eval` reports beside the headline metric (issue 21): the confusion matrix,
// calibration (expected calibration error over equal-width confidence bins, with the
// reliability table), and per-slice accuracy and macro-F1 with the largest gap between slices
// (the fairness check). Pure functions over the model's scores and the labels.
import { readFileSync } from 'node:fs';
import { accuracy, precisionRecallF1, predictedClasses } from './metrics.js';
import { ToolErrors } from './errors.js';

/** rows[label][predicted]: how many samples of each true class went to each predicted class. */
export interface Confusion { classes: number; rows: number[][] }

export function confusionMatrix(pred: ArrayLike<number>, labels: ArrayLike<number>, classes: number): Confusion {
  const rows = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) rows[labels[i]!]![pred[i]!]! += 1;
  return { classes, rows };
}

export function formatConfusion(c: Confusion): string[] {
  const w = Math.max(4, ...c.rows.flat().map((v) => String(v).length)) + 1;
  const pad = (s: string | number) => String(s).padStart(w);
  return [
    `confusion matrix (rows: true class, columns: predicted class):`,
    `${pad('')}${Array.from({ length: c.classes }, (_, j) => pad(j)).join('')}`,
    ...c.rows.map((r, i) => `${pad(i)}${r.map(pad).join('')}`),
  ];
}

/**
 * Per-sample class probabilities: rows that are already probabilities (non-negative, summing
 * to 1) are kept, logits go through a softmax; one column is P(class 1).
 */
export function probabilities(scores: Float32Array, width: number): { probs: Float64Array; width: number; softmaxed: boolean } {
  const n = scores.length / width;
  if (width === 1) return { probs: Float64Array.from(scores, (p) => Math.min(1, Math.max(0, p))), width: 1, softmaxed: false };
  let already = true;
  for (let i = 0; i < n && already; i++) {
    let s = 0;
    for (let j = 0; j < width; j++) {
      const v = scores[i * width + j]!;
      if (v < 0) already = false;
      s += v;
    }
    if (Math.abs(s - 1) > 1e-3) already = false;
  }
  if (already) return { probs: Float64Array.from(scores), width, softmaxed: false };
  const probs = new Float64Array(scores.length);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let j = 0; j < width; j++) max = Math.max(max, scores[i * width + j]!);
    let sum = 0;
    for (let j = 0; j < width; j++) sum += (probs[i * width + j] = Math.exp(scores[i * width + j]! - max));
    for (let j = 0; j < width; j++) probs[i * width + j]! /= sum;
  }
  return { probs, width, softmaxed: true };
}

export interface ReliabilityBin { from: number; to: number; samples: number; confidence: number; accuracy: number }
export interface Calibration { ece: number; bins: number; table: ReliabilityBin[]; softmaxed: boolean }

/**
 * Expected calibration error: samples binned by their top-class probability into `bins`
 * equal-width bins over [0, 1] (the top bin closed); ECE = sum over bins of
 * (samples in bin / all) x |accuracy in bin - mean confidence in bin|.
 */
export function calibration(scores: Float32Array, width: number, labels: ArrayLike<number>, bins = 10): Calibration {
  const { probs, softmaxed } = probabilities(scores, width);
  const n = labels.length;
  const count = new Array<number>(bins).fill(0);
  const conf = new Array<number>(bins).fill(0);
  const right = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) {
    let p: number;
    let pred: number;
    if (width === 1) {
      pred = probs[i]! >= 0.5 ? 1 : 0;
      p = pred ? probs[i]! : 1 - probs[i]!;
    } else {
      pred = 0;
      for (let j = 1; j < width; j++) if (probs[i * width + j]! > probs[i * width + pred]!) pred = j;
      p = probs[i * width + pred]!;
    }
    const b = Math.min(bins - 1, Math.floor(p * bins));
    count[b]! += 1;
    conf[b]! += p;
    if (pred === labels[i]) right[b]! += 1;
  }
  let ece = 0;
  const table: ReliabilityBin[] = [];
  for (let b = 0; b < bins; b++) {
    const c = count[b]!;
    const row = { from: b / bins, to: (b + 1) / bins, samples: c, confidence: c ? conf[b]! / c : NaN, accuracy: c ? right[b]! / c : NaN };
    table.push(row);
    if (c) ece += (c / n) * Math.abs(row.accuracy - row.confidence);
  }
  return { ece, bins, table, softmaxed };
}

export function formatCalibration(c: Calibration): string[] {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '  -  ');
  return [
    `calibration: expected calibration error ${c.ece.toFixed(4)} over ${c.bins} equal-width bins of the top-class probability${c.softmaxed ? ' (softmax of the output)' : ''}`,
    '  confidence bin   samples  mean confidence  accuracy',
    ...c.table.filter((r) => r.samples > 0).map((r) => `  [${r.from.toFixed(2)}, ${r.to.toFixed(2)}${r.to === 1 ? ']' : ')'}  ${String(r.samples).padStart(8)}  ${f(r.confidence).padStart(15)}  ${f(r.accuracy).padStart(8)}`),
  ];
}

export interface SliceMetrics { slice: string; samples: number; accuracy: number; f1: number }
export interface Slices { slices: SliceMetrics[]; gap: { accuracy: number; f1: number; worst: string; best: string } }

/** Slice names, one non-empty line per sample in file-name order. */
export function readSlices(file: string, samples: number): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw ToolErrors.LABELS_INVALID(`cannot read slices ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const names = text.split(/\r?\n/).map((l) => l.trim());
  while (names.length && names[names.length - 1] === '') names.pop();
  const blank = names.indexOf('');
  if (blank >= 0) throw ToolErrors.LABELS_INVALID(`${file} line ${blank + 1} is empty; expected one slice (group) name per line, one line per sample`);
  if (names.length !== samples) {
    throw ToolErrors.LABELS_INVALID(`${file} has ${names.length} slice names, but the data folder holds ${samples} samples; expected one group name per sample, in file-name order`);
  }
  return names;
}

/** Accuracy and macro-F1 per slice, and the largest gap between slices (best minus worst). */
export function sliceMetrics(pred: ArrayLike<number>, labels: ArrayLike<number>, names: string[]): Slices {
  const groups = new Map<string, number[]>();
  names.forEach((s, i) => {
    const g = groups.get(s);
    if (g) g.push(i);
    else groups.set(s, [i]);
  });
  const slices = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([slice, idx]) => {
    const p = idx.map((i) => pred[i]!);
    const l = idx.map((i) => labels[i]!);
    return { slice, samples: idx.length, accuracy: accuracy(p, l), f1: precisionRecallF1(p, l).f1 };
  });
  const byAcc = [...slices].sort((a, b) => a.accuracy - b.accuracy);
  const f1s = slices.map((s) => s.f1);
  return {
    slices,
    gap: { accuracy: byAcc[byAcc.length - 1]!.accuracy - byAcc[0]!.accuracy, f1: Math.max(...f1s) - Math.min(...f1s), worst: byAcc[0]!.slice, best: byAcc[byAcc.length - 1]!.slice },
  };
}

export function formatSlices(s: Slices): string[] {
  const w = Math.max(5, ...s.slices.map((x) => x.slice.length));
  return [
    `slices (${s.slices.length}):`,
    `  ${'slice'.padEnd(w)}  samples  accuracy  macro-F1`,
    ...s.slices.map((x) => `  ${x.slice.padEnd(w)}  ${String(x.samples).padStart(7)}  ${x.accuracy.toFixed(4).padStart(8)}  ${x.f1.toFixed(4).padStart(8)}`),
    `  largest gap: accuracy ${s.gap.accuracy.toFixed(4)} (${s.gap.worst} lowest, ${s.gap.best} highest), macro-F1 ${s.gap.f1.toFixed(4)}`,
  ];
}

export { predictedClasses };

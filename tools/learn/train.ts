// Mini-batch training of a head over precomputed features, with a deterministic validation
// split, a learning-rate schedule, L2 and early stopping on the validation loss; the head of
// the best validation epoch is the one returned.
import { mulberry32 } from '../prng.js';
import {
  backward, cloneHead, crossEntropy, forward, Optimizer, scheduledRate, sumSquares, type Head, type LossTerm, type OptimizerName,
} from './dense.js';

export interface TrainOptions {
  epochs: number;
  lr: number;
  batch: number;
  schedule: 'cosine' | 'step' | 'constant';
  l2: number;
  /** Epochs without a better validation loss before stopping (0: never stop early). */
  patience: number;
  seed: number;
  optimizer: OptimizerName;
  /** Weights that stay zero, per layer (distillation of a pruned head). */
  frozenZeros?: (Uint8Array | undefined)[];
}

export interface Epoch { epoch: number; lr: number; train: number; val: number }

export interface Split { train: number[]; val: number[] }

/** A seeded shuffle of 0..n-1, the first `fraction` of it for validation: the same on every run. */
export function splitIndices(n: number, fraction: number, seed: number): Split {
  const idx = Array.from({ length: n }, (_, i) => i);
  const rand = mulberry32(seed ^ 0x5eed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  const nVal = n > 1 ? Math.max(1, Math.round(n * fraction)) : 0;
  return { val: idx.slice(0, nVal).sort((a, b) => a - b), train: idx.slice(nVal) };
}

/**
 * K folds for cross-validation: the same seeded shuffle as splitIndices, the sample at shuffled
 * position i in fold i mod K (fold sizes differ by at most one); each fold's indices ascending.
 */
export function foldIndices(n: number, k: number, seed: number): number[][] {
  const idx = Array.from({ length: n }, (_, i) => i);
  const rand = mulberry32(seed ^ 0x5eed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  const folds = Array.from({ length: k }, () => [] as number[]);
  idx.forEach((s, i) => folds[i % k]!.push(s));
  return folds.map((f) => f.sort((a, b) => a - b));
}

/** The training problem: features (n x dim) and a loss over a subset of samples. */
export interface Problem {
  features: Float64Array;
  dim: number;
  classes: number;
  /** Loss terms restricted to the given samples, in their order. */
  terms(samples: number[]): LossTerm[];
}

export function gather(features: Float64Array, dim: number, samples: number[]): Float64Array {
  const x = new Float64Array(samples.length * dim);
  samples.forEach((s, r) => x.set(features.subarray(s * dim, (s + 1) * dim), r * dim));
  return x;
}

export function lossOn(head: Head, p: Problem, samples: number[], l2: number): number {
  if (samples.length === 0) return NaN;
  let total = 0;
  for (let s = 0; s < samples.length; s += 1024) {
    const part = samples.slice(s, s + 1024);
    const f = forward(head, gather(p.features, p.dim, part), part.length);
    total += crossEntropy(f.logits, part.length, p.classes, p.terms(part)).loss * part.length;
  }
  return total / samples.length + 0.5 * l2 * sumSquares(head);
}

export interface TrainResult { head: Head; history: Epoch[]; bestEpoch: number; stoppedEarly: boolean }

export function train(initial: Head, p: Problem, split: Split, o: TrainOptions, onEpoch: (e: Epoch) => void = () => {}): TrainResult {
  const head = cloneHead(initial);
  const opt = new Optimizer(head, o.optimizer, o.l2, o.frozenZeros);
  const rand = mulberry32(o.seed);
  const order = [...split.train];
  const history: Epoch[] = [];
  let best = { loss: Infinity, head: cloneHead(head), epoch: 0 };
  let stoppedEarly = false;
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const lr = scheduledRate(o.schedule, o.lr, epoch - 1, o.epochs);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let s = 0; s < order.length; s += o.batch) {
      const part = order.slice(s, s + o.batch);
      const f = forward(head, gather(p.features, p.dim, part), part.length);
      const { grad } = crossEntropy(f.logits, part.length, p.classes, p.terms(part));
      opt.step(backward(head, f, grad, part.length), lr);
    }
    const e: Epoch = { epoch, lr, train: lossOn(head, p, split.train, o.l2), val: lossOn(head, p, split.val, o.l2) };
    history.push(e);
    onEpoch(e);
    const score = split.val.length ? e.val : e.train;
    if (score < best.loss - 1e-9) best = { loss: score, head: cloneHead(head), epoch };
    else if (o.patience > 0 && epoch - best.epoch >= o.patience) {
      stoppedEarly = epoch < o.epochs;
      break;
    }
  }
  return { head: best.head, history, bestEpoch: best.epoch, stoppedEarly };
}

/** The loss curve as a small standalone SVG: train and validation loss per epoch. */
export function lossCurveSvg(history: Epoch[], title: string): string {
  const [w, h, pad] = [640, 360, 48];
  const values = history.flatMap((e) => [e.train, e.val]).filter(Number.isFinite);
  const max = Math.max(...values, 1e-9);
  const min = Math.min(...values, 0);
  const x = (epoch: number) => pad + ((w - 2 * pad) * (epoch - 1)) / Math.max(history.length - 1, 1);
  const y = (v: number) => h - pad - ((h - 2 * pad) * (v - min)) / (max - min || 1);
  const line = (key: 'train' | 'val', color: string) => {
    const pts = history.filter((e) => Number.isFinite(e[key])).map((e) => `${x(e.epoch).toFixed(1)},${y(e[key]).toFixed(1)}`);
    return pts.length ? `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>` : '';
  };
  const esc = (s: string) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${pad}" y="24">${esc(title)}</text>`,
    `<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="black"/>`,
    `<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="black"/>`,
    `<text x="${w / 2}" y="${h - 12}">epoch (1..${history.length})</text>`,
    `<text x="4" y="${pad}">${max.toPrecision(3)}</text><text x="4" y="${h - pad}">${min.toPrecision(3)}</text>`,
    line('train', '#1f77b4'),
    line('val', '#d62728'),
    `<text x="${w - pad - 120}" y="${pad}" fill="#1f77b4">train loss</text><text x="${w - pad - 120}" y="${pad + 16}" fill="#d62728">validation loss</text>`,
    '</svg>',
    '',
  ].join('\n');
}

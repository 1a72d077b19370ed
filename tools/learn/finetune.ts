// `edge-model finetune` and `edge-model distill`: freeze a model up to a tensor, train a new
// head (or the student's head) on the frozen features, and write the model with it spliced in.
import { writeFileSync } from 'node:fs';
import { readLabels } from '../compress/evaluate.js';
import { ToolErrors } from '../compress/errors.js';
import { readModelFile, writeModelFile } from '../compress/model-file.js';
import { forward, initHead, type Head, type LossTerm } from './dense.js';
import { computeFeatures, findCut, spliceHead, type Features } from './head-graph.js';
import { foldIndices, splitIndices, train, lossCurveSvg, type Epoch, type Problem, type TrainOptions } from './train.js';

export interface HeadOptions extends TrainOptions {
  from?: string;
  /** Hidden layer width of an MLP head; 0 for a linear head. */
  hidden: number;
  classes?: number;
  valFraction: number;
  /** Where to write the loss curve (SVG). */
  curve?: string;
  /** K-fold cross-validation before the final training (finetune only). */
  folds?: number;
}

export interface CrossValidation {
  folds: number;
  /** Per fold: its size, the best epoch and the validation accuracy of the head trained on the other folds. */
  perFold: { fold: number; samples: number; bestEpoch: number; accuracy: number }[];
  mean: number;
  /** Sample standard deviation (n - 1) of the fold accuracies. */
  sd: number;
}

export interface FinetuneReport {
  output: string;
  feature: string;
  featureDim: number;
  classes: number;
  samples: { train: number; validation: number };
  history: Epoch[];
  bestEpoch: number;
  stoppedEarly: boolean;
  /** Accuracy on the validation split: the input model's (when its classes match) and the new one's. */
  validationAccuracy: { before: number | null; after: number };
  curve?: string;
  bytes: number;
  crossValidation?: CrossValidation;
}

export function checkLabels(labels: Float64Array, samples: number, classes: number, file: string): void {
  if (labels.length !== samples) throw ToolErrors.LABELS_INVALID(`${file} has ${labels.length} labels, but the data folder holds ${samples} samples; expected one label per sample, in file-name order`);
  labels.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= classes) throw ToolErrors.LABELS_INVALID(`${file}: label #${i + 1} is ${l}; expected class indices 0..${classes - 1}`);
  });
}

export const oneHot = (labels: Float64Array, classes: number): Float64Array => {
  const t = new Float64Array(labels.length * classes);
  labels.forEach((l, i) => { t[i * classes + l] = 1; });
  return t;
};

export function argmaxAccuracy(scores: ArrayLike<number>, width: number, labels: Float64Array, samples: number[]): number {
  if (samples.length === 0) return NaN;
  let right = 0;
  for (const s of samples) {
    let best = 0;
    for (let j = 1; j < width; j++) if (scores[s * width + j]! > scores[s * width + best]!) best = j;
    if (best === labels[s]) right++;
  }
  return right / samples.length;
}

export function headAccuracy(head: Head, f: Features, labels: Float64Array, samples: number[]): number {
  const k = head.layers[head.layers.length - 1]!.outDim;
  const x = new Float64Array(samples.length * f.dim);
  samples.forEach((s, r) => x.set(f.features.subarray(s * f.dim, (s + 1) * f.dim), r * f.dim));
  const logits = forward(head, x, samples.length).logits;
  return argmaxAccuracy(logits, k, Float64Array.from(samples, (s) => labels[s]!), samples.map((_, r) => r));
}

function checkOptions(o: HeadOptions): void {
  const bad = (flag: string, v: number, want: string) => ToolErrors.USAGE(`${flag} ${v}: expected ${want}`);
  if (!(Number.isInteger(o.epochs) && o.epochs >= 1)) throw bad('--epochs', o.epochs, 'a whole number >= 1');
  if (!(o.lr > 0)) throw bad('--lr', o.lr, 'a positive learning rate, e.g. 0.01');
  if (!(Number.isInteger(o.batch) && o.batch >= 1)) throw bad('--batch', o.batch, 'a whole number >= 1');
  if (!(o.l2 >= 0)) throw bad('--l2', o.l2, 'a weight decay >= 0');
  if (!(Number.isInteger(o.patience) && o.patience >= 0)) throw bad('--patience', o.patience, 'a whole number of epochs >= 0');
  if (!(Number.isInteger(o.hidden) && o.hidden >= 0)) throw bad('--hidden', o.hidden, 'a whole number of units >= 0 (0: linear head)');
  if (!(o.valFraction > 0 && o.valFraction < 1)) throw bad('--val', o.valFraction, 'a fraction in (0, 1)');
  if (o.classes !== undefined && !(Number.isInteger(o.classes) && o.classes >= 2)) throw bad('--classes', o.classes, 'a whole number >= 2');
}

export async function finetuneFile(input: string, output: string, dataDir: string, labelsFile: string, o: HeadOptions, onEpoch?: (e: Epoch) => void): Promise<FinetuneReport> {
  checkOptions(o);
  const model = readModelFile(input);
  const cut = findCut(model, o.from, input);
  const labels = readLabels(labelsFile);
  const f = await computeFeatures(input, model, cut, dataDir);
  const classes = o.classes ?? f.width;
  checkLabels(labels, f.samples, classes, labelsFile);
  const split = splitIndices(f.samples, o.valFraction, o.seed);
  const targets = oneHot(labels, classes);
  const ones = new Float64Array(f.samples).fill(1);
  const problem = sliceProblem(f, classes, [{ targets, temperature: 1, weights: ones, scale: 1 }]);
  const dimsOf = [f.dim, ...(o.hidden > 0 ? [o.hidden] : []), classes];
  const crossValidation = o.folds === undefined ? undefined : crossValidate(f, labels, problem, dimsOf, o);
  const r = train(initHead(dimsOf, o.seed), problem, split, o, onEpoch);
  const spliced = spliceHead(model, cut, r.head, f.rank);
  const bytes = writeModelFile(output, spliced);
  const curve = writeCurve(o.curve, r.history, `edge-model finetune ${output}`);
  return {
    output, feature: cut.feature, featureDim: f.dim, classes, samples: { train: split.train.length, validation: split.val.length },
    history: r.history, bestEpoch: r.bestEpoch, stoppedEarly: r.stoppedEarly,
    validationAccuracy: { before: f.width === classes ? argmaxAccuracy(f.outputs, f.width, labels, split.val) : null, after: headAccuracy(r.head, f, labels, split.val) },
    ...(curve ? { curve } : {}), bytes, ...(crossValidation ? { crossValidation } : {}),
  };
}

/** Trains the head K times, each fold held out once (early stopping on it), and scores it there. */
export function crossValidate(f: Features, labels: Float64Array, problem: Problem, dims: number[], o: HeadOptions): CrossValidation {
  const k = o.folds!;
  if (!Number.isInteger(k) || k < 2 || k > f.samples) throw ToolErrors.USAGE(`--folds ${k}: expected a whole number of folds in 2..${f.samples} (the number of samples)`);
  const folds = foldIndices(f.samples, k, o.seed);
  const perFold = folds.map((val, i) => {
    const train_ = folds.flatMap((g, j) => (j === i ? [] : g));
    const r = train(initHead(dims, o.seed), problem, { train: train_, val }, o);
    return { fold: i + 1, samples: val.length, bestEpoch: r.bestEpoch, accuracy: headAccuracy(r.head, f, labels, val) };
  });
  const accs = perFold.map((p) => p.accuracy);
  const mean = accs.reduce((a, b) => a + b, 0) / k;
  const sd = Math.sqrt(accs.reduce((a, b) => a + (b - mean) ** 2, 0) / (k - 1));
  return { folds: k, perFold, mean, sd };
}

/** A Problem whose loss terms are the given per-sample terms restricted to a subset. */
export function sliceProblem(f: Features, classes: number, terms: LossTerm[]): Problem {
  return {
    features: f.features, dim: f.dim, classes,
    terms: (samples) => terms.map((t) => {
      const targets = new Float64Array(samples.length * classes);
      samples.forEach((s, r) => targets.set(t.targets.subarray(s * classes, (s + 1) * classes), r * classes));
      return { ...t, targets, weights: Float64Array.from(samples, (s) => t.weights[s]!) };
    }),
  };
}

export function writeCurve(file: string | undefined, history: Epoch[], title: string): string | undefined {
  if (!file) return undefined;
  try {
    writeFileSync(file, lossCurveSvg(history, title));
  } catch (err) {
    throw ToolErrors.USAGE(`cannot write the loss curve ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return file;
}

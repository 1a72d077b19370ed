// `edge-model eval MODEL --data DIR --labels FILE --metric M`: run the model over a held-out
// set in ONNX Runtime and score its first output against the labels. Also reports the size
// and the share of zero weights, so a pruned or quantized model's cost is visible next to
// what it saves.
import { statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { NpyFormatError, readNpy, toFloat32 } from '../../agent/tensor/npy.js';
import { listNpyFiles, loadBatch, singleInput } from './dataset.js';
import { ToolErrors } from './errors.js';
import { readModelFile } from './model-file.js';
import { accuracy, auc, CLASSIFICATION, predictedClasses, precisionRecallF1, regression, type Metric } from './metrics.js';
import { floatTensor, modelRuns, openSession, runSession } from './ort-session.js';
import { Progress } from './progress.js';
import { calibration, confusionMatrix, readSlices, sliceMetrics, type Calibration, type Confusion, type Slices } from './diagnostics.js';

export interface Evaluation {
  model: string;
  metric: Metric;
  value: number;
  samples: number;
  output: string;
  bytes: number;
  gzipBytes: number;
  /** All metrics that apply to this kind of task, for the package manifest. */
  all: Record<string, number>;
  /** The metric as plain ONNX Runtime gives it on this CPU (value is exact integer arithmetic). */
  ortOnThisCpu: { value: number; why: string; sameAsExact: boolean };
  warning?: string;
  /** Classification only: the confusion matrix and the calibration (ECE, reliability table). */
  confusion?: Confusion;
  calibration?: Calibration;
  /** With a slices file: accuracy and macro-F1 per group, and the largest gap. */
  slices?: Slices;
}

export interface EvalOptions {
  /** One group name per sample (a text file), for per-slice metrics. */
  slices?: string;
  /** Equal-width confidence bins of the calibration (default 10). */
  bins?: number;
}

/** Labels: a .npy array (ints for classes, floats for regression) or a text file, one per line. */
export function readLabels(file: string): Float64Array {
  if (file.endsWith('.npy')) {
    try {
      const a = readNpy(file);
      return Float64Array.from(toFloat32(a));
    } catch (err) {
      if (err instanceof NpyFormatError) throw ToolErrors.LABELS_INVALID(err.message);
      throw err;
    }
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw ToolErrors.LABELS_INVALID(`cannot read labels ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  const values = lines.map((l, i) => {
    const v = Number(l);
    if (!Number.isFinite(v)) throw ToolErrors.LABELS_INVALID(`${file} line ${i + 1}: "${l.slice(0, 40)}" is not a number; expected one label per line`);
    return v;
  });
  return Float64Array.from(values);
}

export interface RunResult { scores: Float32Array; rowWidth: number; samples: number; output: string }

/** Runs the model over every file of a data folder; returns its first output, row per sample. */
export async function runOverFolder(modelFile: string, dataDir: string, form: 'exact' | 'asIs' = 'exact'): Promise<RunResult> {
  const model = readModelFile(modelFile);
  const input = singleInput(model, modelFile);
  const files = listNpyFiles(dataDir, 'data', ToolErrors.DATA_INVALID);
  const batches = files.map((f) => loadBatch(f, input));
  const session = await openSession(modelRuns(model)[form], modelFile);
  const output = session.outputNames[0];
  const total = batches.reduce((s, b) => s + b.shape[0], 0);
  const progress = new Progress('evaluating', total);
  const parts: Float32Array[] = [];
  let rowWidth = 1;
  for (const b of batches) {
    const out = (await runSession(session, { [input.name]: floatTensor(b.data, b.shape) }, `evaluation on ${b.file}`))[output];
    rowWidth = out.dims.slice(1).reduce((a, c) => a * c, 1);
    parts.push(Float32Array.from(out.data as Float32Array));
    progress.tick(b.shape[0]);
  }
  progress.end();
  await session.release();
  const scores = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    scores.set(p, o);
    o += p.length;
  }
  return { scores, rowWidth, samples: total, output };
}

export function score(run: RunResult, labels: Float64Array, metric: Metric, labelsFile = 'labels'): Record<string, number> {
  if (labels.length !== run.samples) {
    throw ToolErrors.LABELS_INVALID(`${labelsFile} has ${labels.length} labels, but the data folder holds ${run.samples} samples; expected one label per sample, in file-name order`);
  }
  if (CLASSIFICATION.has(metric)) {
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i];
      if (!Number.isInteger(l) || l < 0 || (run.rowWidth > 1 && l >= run.rowWidth) || (run.rowWidth === 1 && l > 1)) {
        throw ToolErrors.LABELS_INVALID(`${labelsFile}: label #${i + 1} is ${l}; ${metric} expects class indices 0..${Math.max(run.rowWidth - 1, 1)} for output ${run.output}`);
      }
    }
    const pred = predictedClasses(run.scores, run.rowWidth);
    const prf = precisionRecallF1(pred, labels);
    return { accuracy: accuracy(pred, labels), ...prf, auc: auc(run.scores, run.rowWidth, labels) };
  }
  if (run.rowWidth !== 1) {
    throw ToolErrors.LABELS_INVALID(`${metric} compares one predicted value per sample with one label; output ${run.output} has ${run.rowWidth} values per sample`);
  }
  return regression(run.scores, labels);
}

export async function evaluateModel(modelFile: string, dataDir: string, labelsFile: string, metric: Metric, o: EvalOptions = {}): Promise<Evaluation> {
  const bins = o.bins ?? 10;
  if (!Number.isInteger(bins) || bins < 1 || bins > 1000) throw ToolErrors.USAGE(`--bins ${bins}: expected a whole number of calibration bins in 1..1000`);
  const labels = readLabels(labelsFile);
  const run = await runOverFolder(modelFile, dataDir);
  const all = score(run, labels, metric, labelsFile);
  const names = o.slices ? readSlices(o.slices, run.samples) : undefined;
  let extra: Pick<Evaluation, 'confusion' | 'calibration' | 'slices'> = {};
  if (CLASSIFICATION.has(metric)) {
    const pred = predictedClasses(run.scores, run.rowWidth);
    extra = {
      confusion: confusionMatrix(pred, labels, Math.max(run.rowWidth, 2)),
      calibration: calibration(run.scores, run.rowWidth, labels, bins),
      ...(names ? { slices: sliceMetrics(pred, labels, names) } : {}),
    };
  } else if (names) {
    throw ToolErrors.USAGE(`--slices reports accuracy and macro-F1 per group: give a classification --metric (${[...CLASSIFICATION].join(', ')}), not ${metric}`);
  }
  const bytes = statSync(modelFile).size;
  const runs = modelRuns(readModelFile(modelFile));
  let ortOnThisCpu = { value: all[metric], why: runs.why, sameAsExact: true };
  let warning: string | undefined;
  if (runs.differs) {
    const plain = score(await runOverFolder(modelFile, dataDir, 'asIs'), labels, metric, labelsFile)[metric];
    ortOnThisCpu = { value: plain, why: runs.why, sameAsExact: false };
    if (plain !== all[metric]) {
      warning = `plain ONNX Runtime on this CPU gives ${metric} ${plain.toFixed(4)} instead of ${all[metric].toFixed(4)} (${runs.why}); edge-agent runs such models exactly, and \`edge-model quantize --target ort-x86\` writes a model plain ONNX Runtime runs exactly`;
    }
  }
  return {
    model: modelFile, metric, value: all[metric], samples: run.samples, output: run.output,
    bytes, gzipBytes: gzipSync(readFileSync(modelFile)).length, all, ortOnThisCpu, ...(warning ? { warning } : {}), ...extra,
  };
}

// `edge-model distill --teacher BIG --student SMALL --data DIR [--labels FILE] OUT`: trains the
// student's head on the teacher's tempered probabilities (weight alpha, times T² as Hinton et
// al. scale it) plus the labels where given (weight 1 - alpha). This is how a pruned or
// quantized model gets back some of the accuracy it lost. Reports the student's accuracy
// before and after, and the teacher's, on the validation split (against the labels when given,
// else top-1 agreement with the teacher).
import { ToolErrors } from '../compress/errors.js';
import { readLabels } from '../compress/evaluate.js';
import { readModelFile, writeModelFile } from '../compress/model-file.js';
import { singleInput } from '../compress/dataset.js';
import { initHead, softmax, type LossTerm } from './dense.js';
import { computeFeatures, findCut, spliceHead } from './head-graph.js';
import { argmaxAccuracy, checkLabels, headAccuracy, oneHot, sliceProblem, writeCurve, type HeadOptions } from './finetune.js';
import { splitIndices, train, type Epoch } from './train.js';

export interface DistillOptions extends HeadOptions {
  temperature: number;
  alpha: number;
  labels?: string;
  /** Keep the zero weights of the student's own head at zero (default true). */
  keepZeros?: boolean;
}

export interface DistillReport {
  output: string;
  samples: { train: number; validation: number };
  /** Accuracy on the validation split: against the labels, or agreement with the teacher without labels. */
  against: 'labels' | 'teacher';
  teacher: number;
  studentBefore: number;
  studentAfter: number;
  history: Epoch[];
  bestEpoch: number;
  stoppedEarly: boolean;
  /** Head weights kept at zero (the student's own zeros, unless --no-keep-zeros). */
  zerosKept: number;
  headWeights: number;
  curve?: string;
  bytes: number;
}

/** Teacher outputs as logits: probabilities (rows of a Softmax) are turned back with a log. */
function asLogits(out: Float32Array, k: number): Float64Array {
  let probs = true;
  for (let r = 0; r < out.length && probs; r += k) {
    let s = 0;
    for (let j = 0; j < k; j++) {
      if (out[r + j]! < 0) probs = false;
      s += out[r + j]!;
    }
    if (Math.abs(s - 1) > 1e-3) probs = false;
  }
  return Float64Array.from(out, (v) => (probs ? Math.log(Math.max(v, 1e-12)) : v));
}

export async function distillFiles(teacherFile: string, studentFile: string, output: string, dataDir: string, o: DistillOptions, onEpoch?: (e: Epoch) => void): Promise<DistillReport> {
  if (!(o.temperature > 0)) throw ToolErrors.USAGE(`--temperature ${o.temperature}: expected a positive temperature, e.g. 4`);
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw ToolErrors.USAGE(`--alpha ${o.alpha}: expected a weight in [0, 1] for the teacher's soft targets`);
  if (!o.labels && o.alpha < 1) o = { ...o, alpha: 1 };
  const teacher = readModelFile(teacherFile);
  const student = readModelFile(studentFile);
  const [ti, si] = [singleInput(teacher, teacherFile), singleInput(student, studentFile)];
  if (ti.shape.length !== si.shape.length) throw ToolErrors.MODEL_UNSUPPORTED(`teacher ${teacherFile} and student ${studentFile} take inputs of different rank; distillation feeds both the same data`);
  const tCut = findCut(teacher, undefined, teacherFile);
  const sCut = findCut(student, o.from, studentFile);
  const t = await computeFeatures(teacherFile, teacher, { ...tCut, feature: tCut.output }, dataDir, 'teacher');
  const s = await computeFeatures(studentFile, student, sCut, dataDir, 'student');
  if (t.samples !== s.samples) throw ToolErrors.DATA_INVALID(`teacher and student read ${t.samples} and ${s.samples} samples from ${dataDir}`);
  const classes = o.classes ?? t.width;
  if (t.width !== classes) throw ToolErrors.MODEL_UNSUPPORTED(`the teacher has ${t.width} outputs per sample but --classes is ${classes}`);
  const labels = o.labels ? readLabels(o.labels) : undefined;
  if (labels) checkLabels(labels, s.samples, classes, o.labels!);
  const split = splitIndices(s.samples, o.valFraction, o.seed);
  const teacherLogits = asLogits(t.outputs, t.width);
  const ones = new Float64Array(s.samples).fill(1);
  const terms: LossTerm[] = [{ targets: softmax(teacherLogits, classes, o.temperature), temperature: o.temperature, weights: ones, scale: o.alpha * o.temperature ** 2 }];
  if (labels && o.alpha < 1) terms.push({ targets: oneHot(labels, classes), temperature: 1, weights: ones, scale: 1 - o.alpha });
  // The student's own head is where training starts, when it is one dense layer of the right shape.
  const own = sCut.existing;
  const start = o.hidden === 0 && own && own.layers[0]!.inDim === s.dim && own.layers[0]!.outDim === classes
    ? own : initHead([s.dim, ...(o.hidden > 0 ? [o.hidden] : []), classes], o.seed);
  const truth = labels ?? Float64Array.from({ length: s.samples }, (_, i) => argmax(teacherLogits, classes, i));
  // A pruned student keeps its head's zeros: distillation must not undo the pruning.
  const frozenZeros = start === own && o.keepZeros !== false ? [Uint8Array.from(own.layers[0]!.w, (w) => (w === 0 ? 1 : 0))] : undefined;
  const zeros = frozenZeros ? frozenZeros[0]!.reduce((a, b) => a + b, 0) : 0;
  const r = train(start, sliceProblem(s, classes, terms), split, { ...o, frozenZeros }, onEpoch);
  const bytes = writeModelFile(output, spliceHead(student, sCut, r.head, s.rank));
  const curve = writeCurve(o.curve, r.history, `edge-model distill ${output}`);
  return {
    output, samples: { train: split.train.length, validation: split.val.length }, against: labels ? 'labels' : 'teacher',
    teacher: argmaxAccuracy(teacherLogits, classes, truth, split.val),
    studentBefore: s.width === classes ? argmaxAccuracy(s.outputs, s.width, truth, split.val) : NaN,
    studentAfter: headAccuracy(r.head, s, truth, split.val),
    history: r.history, bestEpoch: r.bestEpoch, stoppedEarly: r.stoppedEarly, zerosKept: zeros,
    headWeights: r.head.layers.reduce((n, d) => n + d.w.length, 0), ...(curve ? { curve } : {}), bytes,
  };
}

function argmax(x: Float64Array, k: number, row: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (x[row * k + j]! > x[row * k + best]!) best = j;
  return best;
}

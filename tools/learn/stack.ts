// `edge-model stack OUT.onnx --members A B ... --data DIR --labels FILE`: trains the combiner
// of a stacked ensemble (fusion "stacked", agent/runtime/stacking.ts). Every member runs over
// the data folder; its score rows, as the runtime fuses them (probabilities: outputs that are
// not already probability rows go through a softmax), are concatenated member after member; a
// linear or small MLP head is trained on them with the finetune trainer (seeded validation
// split, schedule, L2, early stopping) and written as a standalone ONNX model
// x [N, members x classes] -> logits [N, classes].
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataType, makeModel, makeNode, makeTensor, makeValueInfo } from '../../agent/onnx/model.js';
import { probabilities } from '../compress/diagnostics.js';
import { readLabels, runOverFolder } from '../compress/evaluate.js';
import { ToolErrors } from '../compress/errors.js';
import { encodeModel } from '../../agent/onnx/model.js';
import { writeFileSync } from 'node:fs';
import { forward, initHead, type Head } from './dense.js';
import { argmaxAccuracy, checkLabels, oneHot, writeCurve, type HeadOptions } from './finetune.js';
import { splitIndices, train, type Epoch, type Problem } from './train.js';

export interface StackReport {
  output: string;
  members: string[];
  featureDim: number;
  classes: number;
  samples: { train: number; validation: number };
  history: Epoch[];
  bestEpoch: number;
  stoppedEarly: boolean;
  /** Validation accuracy of each member alone, of their mean fusion, and of the stacked combiner. */
  validationAccuracy: { members: number[]; mean: number; stacked: number };
  curve?: string;
  bytes: number;
}

/** A package folder stands for its model.onnx. */
const modelFileOf = (m: string): string => (existsSync(m) && statSync(m).isDirectory() ? join(m, 'model.onnx') : m);

/** The combiner as a standalone ONNX graph: Gemm (ReLU Gemm)* from "scores" to "logits". */
export function combinerModel(head: Head) {
  const nodes = [];
  const inits = [];
  let cur = 'scores';
  for (const [l, d] of head.layers.entries()) {
    const out = l + 1 === head.layers.length ? 'logits' : `h${l}`;
    inits.push(makeTensor(`W${l}`, [d.inDim, d.outDim], Float32Array.from(d.w)), makeTensor(`B${l}`, [d.outDim], Float32Array.from(d.b)));
    nodes.push(makeNode('Gemm', [cur, `W${l}`, `B${l}`], [out]));
    cur = out;
    if (l + 1 < head.layers.length) {
      nodes.push(makeNode('Relu', [out], [`${out}_relu`]));
      cur = `${out}_relu`;
    }
  }
  const first = head.layers[0]!;
  const last = head.layers[head.layers.length - 1]!;
  return makeModel({
    name: 'stacking-combiner', node: nodes, initializer: inits,
    input: [makeValueInfo('scores', DataType.FLOAT, ['N', first.inDim])],
    output: [makeValueInfo('logits', DataType.FLOAT, ['N', last.outDim])],
  });
}

export async function stackFiles(members: string[], output: string, dataDir: string, labelsFile: string, o: HeadOptions, onEpoch?: (e: Epoch) => void): Promise<StackReport> {
  if (members.length < 2) throw ToolErrors.USAGE(`--members: a stacked ensemble fuses 2 or more models; got ${members.length}`);
  const labels = readLabels(labelsFile);
  const runs: { probs: Float64Array; width: number; samples: number }[] = [];
  for (const m of members) {
    const r = await runOverFolder(modelFileOf(m), dataDir);
    runs.push({ ...probabilities(r.scores, r.rowWidth), samples: r.samples });
  }
  const n = runs[0]!.samples;
  const classes = o.classes ?? runs[0]!.width;
  runs.forEach((r, i) => {
    if (r.width !== runs[0]!.width) throw ToolErrors.USAGE(`--members: ${members[i]} answers ${r.width} classes, ${members[0]} ${runs[0]!.width}; the members of an ensemble answer the same classes`);
  });
  checkLabels(labels, n, classes, labelsFile);
  const dim = runs.reduce((s, r) => s + r.width, 0);
  const features = new Float64Array(n * dim);
  for (let s = 0; s < n; s++) {
    let off = s * dim;
    for (const r of runs) {
      features.set(r.probs.subarray(s * r.width, (s + 1) * r.width), off);
      off += r.width;
    }
  }
  const targets = oneHot(labels, classes);
  const problem: Problem = {
    features, dim, classes,
    terms: (samples) => [{
      targets: (() => {
        const t = new Float64Array(samples.length * classes);
        samples.forEach((s, r) => t.set(targets.subarray(s * classes, (s + 1) * classes), r * classes));
        return t;
      })(),
      temperature: 1, weights: new Float64Array(samples.length).fill(1), scale: 1,
    }],
  };
  const split = splitIndices(n, o.valFraction, o.seed);
  const r = train(initHead([dim, ...(o.hidden > 0 ? [o.hidden] : []), classes], o.seed), problem, split, o, onEpoch);
  const model = encodeModel(combinerModel(r.head));
  try {
    writeFileSync(output, model);
  } catch (err) {
    throw ToolErrors.USAGE(`cannot write ${output}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const bytes = model.length;
  const curve = writeCurve(o.curve, r.history, `edge-model stack ${output}`);
  const width = runs[0]!.width;
  const mean = new Float64Array(n * width);
  for (const run of runs) run.probs.forEach((v, i) => { mean[i] += v / runs.length; });
  const x = new Float64Array(split.val.length * dim);
  split.val.forEach((s, k) => x.set(features.subarray(s * dim, (s + 1) * dim), k * dim));
  const stackedLogits = forward(r.head, x, split.val.length).logits;
  return {
    output, members, featureDim: dim, classes, samples: { train: split.train.length, validation: split.val.length },
    history: r.history, bestEpoch: r.bestEpoch, stoppedEarly: r.stoppedEarly,
    validationAccuracy: {
      members: runs.map((run) => argmaxAccuracy(run.probs, run.width, labels, split.val)),
      mean: argmaxAccuracy(mean, width, labels, split.val),
      stacked: argmaxAccuracy(stackedLogits, classes, Float64Array.from(split.val, (s) => labels[s]!), split.val.map((_, k) => k)),
    },
    ...(curve ? { curve } : {}), bytes,
  };
}

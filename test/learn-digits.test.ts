// `edge-model finetune` and `distill` on the digits model with the installed bin:
// - finetune adapts the model to a shifted domain (inverted digits: white background, dark
//   strokes) from 3,000 inverted training digits, and the held-out inverted digits (never
//   trained on) gain at least 10 points; the result goes through quantize/compare/pack;
// - distill gives a pruned digits model (80% of its weights zero) back accuracy it lost, with
//   the fp32 model as the teacher, measured on the held-out digits, and keeps the head's zeros.
import t from 'tap';
// A few edge-model runs (ONNX Runtime over 5,000 digits each, training in TypeScript): about a
// minute on a loaded 2-core machine.
t.setTimeout(240_000);
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensorData } from '../agent/onnx/model.js';
import { writeNpy } from '../agent/tensor/npy.js';
import { readModelFile } from '../tools/compress/model-file.js';
import { DIGIT_PIXELS, heldOutDigits, trainingDigits, type DigitSet } from '../tools/edge-model/digits.js';
import { edgeModel, ensureBuilt, ROOT, scratchDir } from './helpers/edge-model-cli.js';

ensureBuilt();
const dir = scratchDir(t);
const fp32 = join(ROOT, 'models/digits-fp32/model.onnx');
const TRAIN = 3000;

/** A data folder and its labels file: the first `n` digits of a set, through `map`. */
function folder(name: string, set: DigitSet, n: number, map: (v: number) => number): { data: string; labels: string } {
  const data = join(dir, name);
  mkdirSync(data);
  // Two files, so the folder is read in file-name order like any other.
  const half = Math.floor(n / 2);
  for (const [file, from, to] of [['a.npy', 0, half], ['b.npy', half, n]] as const) {
    writeNpy(join(data, file), { dtype: 'float32', shape: [to - from, 1, 28, 28], data: Float32Array.from(set.images.subarray(from * DIGIT_PIXELS, to * DIGIT_PIXELS), map) });
  }
  const labels = join(dir, `${name}-labels.txt`);
  writeFileSync(labels, `${Array.from(set.labels.subarray(0, n)).join('\n')}\n`);
  return { data, labels };
}

const train = trainingDigits();
const held = heldOutDigits();
const invert = (v: number) => 1 - v;
const same = (v: number) => v;

const accuracy = (model: string, set: { data: string; labels: string }): number => {
  const r = edgeModel(['eval', model, '--data', set.data, '--labels', set.labels, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout).value as number;
};

t.test('finetune on inverted digits: +10 points or more on held-out inverted digits, then quantize, compare, pack', async (t) => {
  const shiftedTrain = folder('inv-train', train, TRAIN, invert);
  const shiftedHeld = folder('inv-held', held, held.count, invert);
  const out = join(dir, 'finetuned.onnx');
  const curve = join(dir, 'curve.svg');
  const r = edgeModel(['finetune', fp32, out, '--data', shiftedTrain.data, '--labels', shiftedTrain.labels, '--epochs', '15', '--seed', '7', '--curve', curve]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^epoch 1: train loss \d+\.\d+, validation loss \d+\.\d+/m, 'a loss line per epoch');
  t.match(r.stdout, /a new head on f \(784 features\) -> 10 classes/);
  t.match(r.stdout, /samples: 2400 train, 600 validation/);
  t.match(readFileSync(curve, 'utf8'), /^<svg[^]*<polyline[^]*<polyline[^]*<\/svg>/, 'the curve, train and validation');

  const before = accuracy(fp32, shiftedHeld);
  const after = accuracy(out, shiftedHeld);
  t.comment(`held-out inverted digits (2000, never trained on): ${(100 * before).toFixed(2)}% before, ${(100 * after).toFixed(2)}% after finetune`);
  t.ok(after - before >= 0.10, `+${(100 * (after - before)).toFixed(1)} points`);
  t.ok(after >= 0.85, `${after} on the shifted domain`);
  // Plain digits are not what it was tuned for; the point is the shifted domain.
  t.comment(`plain held-out digits after finetune: ${(100 * accuracy(out, folder('plain-held', held, held.count, same))).toFixed(2)}%`);

  const int8 = join(dir, 'finetuned-int8.onnx');
  const q = edgeModel(['quantize', out, int8, '--calib', shiftedTrain.data]);
  t.equal(q.code, 0, q.stderr);
  const c = edgeModel(['compare', out, int8, '--data', shiftedHeld.data, '--json']);
  t.equal(c.code, 0, c.stderr);
  t.ok(JSON.parse(c.stdout).outputs[0].top1Agreement > 0.98, 'int8 agrees with the fine-tuned fp32');
  const p = edgeModel(['pack', int8, '--name', 'digits', '--version', '1.1.0', '--out', join(dir, 'pkg'), '--template', join(ROOT, 'models/digits-fp32/manifest.json'), '--data', shiftedHeld.data, '--labels', shiftedHeld.labels]);
  t.equal(p.code, 0, p.stderr);
  t.ok(existsSync(join(dir, 'pkg/manifest.json')));

  // An MLP head from an earlier cut, seeded: the same run twice gives the same model.
  const mlp = (name: string) => edgeModel(['finetune', fp32, join(dir, name), '--from', 'MaxPool_p2', '--hidden', '32', '--data', shiftedTrain.data, '--labels', shiftedTrain.labels, '--epochs', '3', '--json']);
  const [m1, m2] = [mlp('mlp1.onnx'), mlp('mlp2.onnx')];
  t.equal(m1.code, 0, m1.stderr);
  t.same(readFileSync(join(dir, 'mlp1.onnx')), readFileSync(join(dir, 'mlp2.onnx')), 'seeded: identical models');
  t.ok(JSON.parse(m1.stdout).validationAccuracy.after > 0.8, 'the MLP head learns too');
});

t.test('distill: a pruned digits model gets back accuracy it lost, with the fp32 model as teacher', async (t) => {
  const pruned = join(dir, 'pruned.onnx');
  const pr = edgeModel(['prune', fp32, pruned, '--sparsity', '0.8']);
  t.equal(pr.code, 0, pr.stderr);
  const plainTrain = folder('plain-train', train, TRAIN, same);
  const plainHeld = existsSync(join(dir, 'plain-held')) ? { data: join(dir, 'plain-held'), labels: join(dir, 'plain-held-labels.txt') } : folder('plain-held', held, held.count, same);
  const out = join(dir, 'distilled.onnx');
  const r = edgeModel(['distill', '--teacher', fp32, '--student', pruned, '--data', plainTrain.data, '--labels', plainTrain.labels, '--epochs', '15', '--json', out]);
  t.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  t.ok(report.studentAfter > report.studentBefore, `validation: student ${report.studentBefore} -> ${report.studentAfter}, teacher ${report.teacher}`);
  // The pruning stays: every zero of the pruned head is still zero in the distilled one.
  const zerosOf = (file: string) => {
    const m = readModelFile(file);
    const gemm = m.graph!.node!.find((n) => n.opType === 'Gemm')!;
    const w = tensorData(m.graph!.initializer!.find((i) => i.name === gemm.input![1])!) as Float32Array;
    return w.reduce((n, v) => n + (v === 0 ? 1 : 0), 0);
  };
  t.equal(report.zerosKept, zerosOf(pruned), `the head's ${report.zerosKept} pruned weights were kept at zero`);
  t.ok(zerosOf(out) >= zerosOf(pruned), `the distilled head has ${zerosOf(out)} zero weights of ${report.headWeights}`);
  const [teacher, before, after] = [accuracy(fp32, plainHeld), accuracy(pruned, plainHeld), accuracy(out, plainHeld)];
  t.comment(`held-out digits: teacher ${(100 * teacher).toFixed(2)}%, pruned student ${(100 * before).toFixed(2)}% before, ${(100 * after).toFixed(2)}% after distill`);
  t.ok(teacher - before >= 0.1, 'pruning cost at least 10 points');
  t.ok(after - before >= 0.1, `distillation recovers ${(100 * (after - before)).toFixed(1)} points`);
  t.ok(after >= teacher - 0.03, 'to within 3 points of the teacher');

  // Without labels: the teacher's soft targets alone.
  const u = edgeModel(['distill', '--teacher', fp32, '--student', pruned, '--data', plainTrain.data, '--epochs', '5', join(dir, 'unlabelled.onnx')]);
  t.equal(u.code, 0, u.stderr);
  t.match(u.stdout, /validation top-1 agreement with the teacher \(600 samples\): teacher 100\.00%, student \d+\.\d+% before, \d+\.\d+% after/);
  t.ok(accuracy(join(dir, 'unlabelled.onnx'), plainHeld) - before >= 0.1, 'soft targets alone recover accuracy too');
});

t.test('bad input: a clear error, exit 1, nothing written', async (t) => {
  const set = existsSync(join(dir, 'plain-train')) ? { data: join(dir, 'plain-train'), labels: join(dir, 'plain-train-labels.txt') } : folder('plain-train', train, TRAIN, same);
  const short = join(dir, 'short.txt');
  writeFileSync(short, '1\n2\n');
  const cases: [string[], RegExp][] = [
    [['finetune', fp32, join(dir, 'x.onnx'), '--data', set.data, '--labels', short], /has 2 labels, but the data folder holds 3000 samples/],
    [['finetune', fp32, join(dir, 'x.onnx'), '--data', set.data, '--labels', set.labels, '--from', 'Nope'], /--from Nope: .* has no node or tensor of that name/],
    [['finetune', fp32, join(dir, 'x.onnx'), '--data', set.data, '--labels', set.labels, '--classes', '5'], /label #\d+ is [5-9]; expected class indices 0\.\.4/],
    [['finetune', fp32, join(dir, 'x.onnx'), '--data', set.data, '--labels', set.labels, '--lr', '0'], /--lr 0: expected a positive learning rate/],
    [['distill', '--teacher', fp32, '--student', fp32, '--data', set.data, '--alpha', '2', join(dir, 'x.onnx')], /--alpha 2: expected a weight in \[0, 1\]/],
  ];
  for (const [args, message] of cases) {
    const r = edgeModel(args);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, message);
    t.notMatch(r.stderr, /internal error/);
  }
  t.notOk(existsSync(join(dir, 'x.onnx')), 'no model written');
});

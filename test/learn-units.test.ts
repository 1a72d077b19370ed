// The numerics of `edge-model finetune` / `distill` without a CLI: the hand-written dense-layer
// gradients against central finite differences (linear and MLP heads, label and tempered soft
// targets, L2), the seeded validation split, and the head splice (the old head spliced back
// gives the model's own outputs bit for bit in ONNX Runtime).
import t, { type Test } from 'tap';
t.setTimeout(60_000);
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../agent/onnx/model.js';
import { readModelFile } from '../tools/compress/model-file.js';
import { mulberry32 } from '../tools/prng.js';
import { backward, crossEntropy, forward, initHead, softmax, type Head, type LossTerm } from '../tools/learn/dense.js';
import { findCut, spliceHead } from '../tools/learn/head-graph.js';
import { lossOn, splitIndices, train, type Problem } from '../tools/learn/train.js';
import { ROOT } from './helpers/edge-model-cli.js';

function problem(n: number, dim: number, k: number, seed: number, temperature: number): Problem {
  const rand = mulberry32(seed);
  const features = Float64Array.from({ length: n * dim }, () => 2 * rand() - 1);
  const labels = new Float64Array(n * k);
  for (let s = 0; s < n; s++) labels[s * k + Math.floor(rand() * k)] = 1;
  const soft = softmax(Float64Array.from({ length: n * k }, () => 3 * rand()), k, temperature);
  const weights = Float64Array.from({ length: n }, (_, s) => (s % 3 === 0 ? 0 : 1)); // some samples without a label
  const all: LossTerm[] = [
    { targets: soft, temperature, weights: new Float64Array(n).fill(1), scale: 0.7 * temperature ** 2 },
    { targets: labels, temperature: 1, weights, scale: 0.3 },
  ];
  return {
    features, dim, classes: k,
    terms: (samples) => all.map((term) => ({
      ...term,
      targets: Float64Array.from(samples.flatMap((s) => Array.from(term.targets.subarray(s * k, (s + 1) * k)))),
      weights: Float64Array.from(samples, (s) => term.weights[s]!),
    })),
  };
}

function gradientCheck(t: Test, head: Head, p: Problem, l2: number): void {
  const samples = Array.from({ length: p.features.length / p.dim }, (_, i) => i);
  const f = forward(head, p.features, samples.length);
  const { grad } = crossEntropy(f.logits, samples.length, p.classes, p.terms(samples));
  const g = backward(head, f, grad, samples.length);
  let worst = 0;
  let checked = 0;
  head.layers.forEach((d, l) => {
    for (const [name, params, analytic] of [['w', d.w, g.w[l]!], ['b', d.b, g.b[l]!]] as const) {
      for (let i = 0; i < params.length; i++) {
        const keep = params[i]!;
        const eps = 1e-5;
        params[i] = keep + eps;
        const up = lossOn(head, p, samples, l2);
        params[i] = keep - eps;
        const down = lossOn(head, p, samples, l2);
        params[i] = keep;
        const numeric = (up - down) / (2 * eps);
        const exact = analytic[i]! + (name === 'w' ? l2 * keep : 0);
        const rel = Math.abs(numeric - exact) / Math.max(1e-6, Math.abs(numeric) + Math.abs(exact));
        worst = Math.max(worst, rel);
        checked++;
      }
    }
  });
  t.ok(worst < 1e-5, `${checked} parameters: largest relative difference ${worst.toExponential(2)} between backprop and finite differences`);
}

t.test('gradients of a linear head match finite differences (labels + soft targets at T=3, L2)', async (t) => {
  gradientCheck(t, initHead([7, 4], 11), problem(9, 7, 4, 3, 3), 0.01);
});

t.test('gradients of an MLP head (ReLU) match finite differences', async (t) => {
  const head = initHead([6, 8, 3], 5);
  head.layers[0]!.b.fill(0.1); // fewer units sitting exactly on the ReLU kink
  gradientCheck(t, head, problem(10, 6, 3, 7, 1), 0.001);
});

t.test('the validation split is seeded, disjoint and complete', async (t) => {
  const a = splitIndices(1000, 0.2, 42);
  t.same(splitIndices(1000, 0.2, 42), a, 'same seed, same split');
  t.not(JSON.stringify(splitIndices(1000, 0.2, 43).val), JSON.stringify(a.val), 'another seed, another split');
  t.equal(a.val.length, 200);
  t.equal(new Set([...a.train, ...a.val]).size, 1000, 'every sample in exactly one part');
});

t.test('training lowers the loss on a learnable problem, and stops early when validation stops improving', async (t) => {
  const rand = mulberry32(9);
  const n = 400;
  const features = Float64Array.from({ length: n * 2 }, () => 2 * rand() - 1);
  const targets = new Float64Array(n * 2);
  for (let s = 0; s < n; s++) targets[s * 2 + (features[s * 2]! + features[s * 2 + 1]! > 0 ? 1 : 0)] = 1;
  const p: Problem = {
    features, dim: 2, classes: 2,
    terms: (samples) => [{ targets: Float64Array.from(samples.flatMap((s) => [targets[2 * s]!, targets[2 * s + 1]!])), temperature: 1, weights: new Float64Array(samples.length).fill(1), scale: 1 }],
  };
  const split = splitIndices(n, 0.25, 1);
  const start = initHead([2, 2], 1);
  const r = train(start, p, split, { epochs: 200, lr: 0.05, batch: 32, schedule: 'constant', l2: 0, patience: 3, seed: 1, optimizer: 'adam' });
  t.ok(r.history[r.history.length - 1]!.train < lossOn(start, p, split.train, 0) / 2, 'the training loss at least halves');
  const best = Math.min(...r.history.map((e) => e.val));
  t.equal(r.history[r.bestEpoch - 1]!.val, best, 'the head returned is the best validation epoch\'s');
  t.ok(r.stoppedEarly && r.history.length === r.bestEpoch + 3, `stopped at epoch ${r.history.length}, 3 (the patience) after the best, ${r.bestEpoch}`);
  const mask = Uint8Array.from([1, 0, 0, 1]);
  const masked = train(start, p, split, { epochs: 3, lr: 0.05, batch: 32, schedule: 'cosine', l2: 0, patience: 0, seed: 1, optimizer: 'adam', frozenZeros: [mask] });
  t.same([masked.head.layers[0]!.w[0], masked.head.layers[0]!.w[3]], [0, 0], 'frozen weights stay zero');
  t.ok(masked.head.layers[0]!.w[1] !== start.layers[0]!.w[1], 'the others train');
  for (const opt of ['sgd', 'adam'] as const) {
    const again = train(start, p, split, { epochs: 5, lr: 0.05, batch: 32, schedule: 'step', l2: 1e-3, patience: 0, seed: 1, optimizer: opt });
    t.same(again.history, train(start, p, split, { epochs: 5, lr: 0.05, batch: 32, schedule: 'step', l2: 1e-3, patience: 0, seed: 1, optimizer: opt }).history, `${opt}: seeded runs are identical`);
  }
});

t.test('splicing the model\'s own head back gives its outputs exactly', async (t) => {
  const file = join(ROOT, 'models/digits-fp32/model.onnx');
  const model = readModelFile(file);
  const cut = findCut(model, undefined, file);
  t.equal(cut.feature, 'f');
  t.ok(cut.existing, 'the Gemm head is read back as a dense layer');
  const spliced = spliceHead(model, cut, cut.existing!, 2);
  const rand = mulberry32(4);
  const x = new ort.Tensor('float32', Float32Array.from({ length: 3 * 784 }, () => rand()), [3, 1, 28, 28]);
  const run = async (m: typeof model) => {
    const s = await ort.InferenceSession.create(encodeModel(m));
    const out = (await s.run({ input: x })).logits!.data as Float32Array;
    await s.release();
    return Array.from(out);
  };
  t.same(await run(spliced), await run(model));
  const mlp = spliceHead(model, findCut(model, 'MaxPool_p2', file), initHead([784, 16, 10], 3), 4);
  t.match(mlp.graph!.node!.map((n) => n.opType).slice(-4), ['Flatten', 'Gemm', 'Relu', 'Gemm'], 'a rank-4 cut gets a Flatten, an MLP a Relu between its Gemms');
  t.equal((await run(mlp)).length, 30);
});

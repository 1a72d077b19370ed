// Issue 21 item 6, stacking: `edge-model stack` trains a combiner on two members' scores over
// half of the held-out digits, and an agent serves the ensemble `fusion: "stacked"` over real
// HTTP. The members: the digits model, and the same model with its classes rotated by one (it
// answers digit d as d - 1: informative, but wrong by a fixed permutation). Mean fusion must
// suffer from the rotated member; the combiner learns to undo the rotation, so on the other
// half of the held-out digits (never used to train the combiner) stacking does far better than
// the mean and at least about as well as the best member. The config rules: combiner iff stacked.
import t from 'tap';
// One edge-model stack run (two members over 1,000 digits, a linear head: seconds) and an
// in-process agent answering 1,000 digits twice: well under a minute; 3 minutes on a loaded machine.
t.setTimeout(180_000);
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel } from '../agent/onnx/model.js';
import { parseConfig } from '../agent/config/load.js';
import { writeNpy } from '../agent/tensor/npy.js';
import { readModelFile } from '../tools/compress/model-file.js';
import { DIGIT_PIXELS } from '../tools/edge-model/digits.js';
import { findCut, spliceHead } from '../tools/learn/head-graph.js';
import { edgeModel, ensureBuilt, scratchDir } from './helpers/edge-model-cli.js';
import { argmax, copyPackage, FP32, heldOut, postJson, replaceFile, startAgent } from './helpers/model-packages.js';

ensureBuilt();
const dir = scratchDir(t);

// The rotated member: logit c of the new head is logit (c + 1) mod 10 of the original.
const fp32 = readModelFile(join(FP32, 'model.onnx'));
const cut = findCut(fp32, undefined, 'digits');
const head = cut.existing!;
const d = head.layers[0]!;
const w = new Float64Array(d.w.length);
const b = new Float64Array(d.outDim);
for (let i = 0; i < d.inDim; i++) for (let c = 0; c < 10; c++) w[i * 10 + c] = d.w[i * 10 + ((c + 1) % 10)]!;
for (let c = 0; c < 10; c++) b[c] = d.b[(c + 1) % 10]!;
const rotatedBytes = encodeModel(spliceHead(fp32, cut, { layers: [{ ...d, w, b }] }, 2));
const rotatedFile = join(dir, 'rotated.onnx');
writeFileSync(rotatedFile, rotatedBytes);
const rotatedPkg = copyPackage(FP32);
replaceFile(rotatedPkg, 'model.onnx', rotatedBytes);

// Held-out digits in two interleaved halves: even positions train the combiner, odd ones test.
const all = heldOut();
const half = (parity: number) => {
  const idx = Array.from({ length: all.count }, (_, i) => i).filter((i) => i % 2 === parity);
  const data = new Float32Array(idx.length * DIGIT_PIXELS);
  idx.forEach((s, k) => data.set(all.images.subarray(s * DIGIT_PIXELS, (s + 1) * DIGIT_PIXELS), k * DIGIT_PIXELS));
  return { data, labels: idx.map((s) => all.labels[s]!), count: idx.length };
};
const fit = half(0);
const test = half(1);

t.test('config: a combiner iff fusion is "stacked"', async (t) => {
  const cfg = (e: Record<string, unknown>) => () => parseConfig({
    deviceId: 'x', dataDir: 'data', models: [{ name: 'a', package: 'a' }, { name: 'b', package: 'b' }], runtime: { ensembles: [{ name: 'ab', members: ['a', 'b'], ...e }] },
  }, 'test config', '/cfg');
  t.throws(cfg({ fusion: 'stacked' }), /\/runtime\/ensembles\/0\/combiner: fusion "stacked" needs a combiner/);
  t.throws(cfg({ fusion: 'mean', combiner: 'c.onnx' }), /a combiner is for fusion "stacked" only/);
  const ok = parseConfig({ deviceId: 'x', dataDir: 'data', models: [{ name: 'a', package: 'a' }, { name: 'b', package: 'b' }], runtime: { ensembles: [{ name: 'ab', members: ['a', 'b'], fusion: 'stacked', combiner: 'c.onnx' }] } }, 'test config', '/cfg');
  t.equal(ok.runtime.ensembles[0]!.combiner, '/cfg/c.onnx', 'the combiner path is relative to the config file');
});

t.test('a stacked ensemble beats mean fusion through the agent, and matches its best member', async (t) => {
  const data = join(dir, 'fit');
  mkdirSync(data);
  writeNpy(join(data, 'a.npy'), { dtype: 'float32', shape: [fit.count, 1, 28, 28], data: fit.data });
  writeFileSync(join(dir, 'fit-labels.txt'), fit.labels.join('\n') + '\n');
  const combiner = join(dir, 'combiner.onnx');
  const r = edgeModel(['stack', combiner, '--members', FP32, rotatedFile, '--data', data, '--labels', join(dir, 'fit-labels.txt'), '--epochs', '40', '--lr', '0.05', '--seed', '2', '--json']);
  t.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  t.equal(rep.featureDim, 20, 'two members x 10 classes');
  t.comment(`stack validation: members ${rep.validationAccuracy.members.map((v: number) => v.toFixed(4)).join(', ')}, mean ${rep.validationAccuracy.mean.toFixed(4)}, stacked ${rep.validationAccuracy.stacked.toFixed(4)}`);
  t.ok(rep.validationAccuracy.stacked > rep.validationAccuracy.mean, 'stacking beats the mean on the validation split');

  const agent = await startAgent({
    models: [{ name: 'plain', package: FP32, backend: 'ort' }, { name: 'rotated', package: rotatedPkg, backend: 'ort' }],
    runtime: { ensembles: [
      { name: 'stacked', members: ['plain', 'rotated'], fusion: 'stacked', combiner },
      { name: 'mean', members: ['plain', 'rotated'], fusion: 'mean' },
      { name: 'broken', members: ['plain', 'rotated'], fusion: 'stacked', combiner: join(dir, 'no-such-combiner.onnx') },
    ] },
  });
  t.teardown(() => agent.stop());
  const accuracy = async (name: string): Promise<number> => {
    let right = 0;
    for (let s = 0; s < test.count; s += 250) {
      const n = Math.min(250, test.count - s);
      const body = { inputs: { input: { shape: [n, 1, 28, 28], data: Array.from(test.data.subarray(s * DIGIT_PIXELS, (s + n) * DIGIT_PIXELS)) } } };
      const res = await postJson(`${agent.url}/v1/models/${name}/infer`, body);
      if (res.status !== 200) throw new Error(`${name}: ${res.status} ${JSON.stringify(res.body)}`);
      const out = res.body.outputs.scores ?? res.body.outputs.logits;
      for (let k = 0; k < n; k++) if (argmax(out.data.slice(k * 10, k * 10 + 10)) === test.labels[s + k]) right++;
    }
    return right / test.count;
  };
  const acc: Record<string, number> = {};
  for (const m of ['plain', 'rotated', 'mean', 'stacked']) acc[m] = await accuracy(m);
  t.comment(`held-out (${test.count} digits): ${Object.entries(acc).map(([k, v]) => `${k} ${(100 * v).toFixed(2)}%`).join(', ')}`);
  t.ok(acc.rotated! < 0.05, 'the rotated member alone is almost always wrong');
  t.ok(acc.stacked! > acc.mean! + 0.2, 'stacking beats mean fusion by more than 20 points');
  t.ok(acc.stacked! >= Math.max(acc.plain!, acc.rotated!) - 0.005, 'stacking is as good as the best member (within half a point)');
  const one = await postJson(`${agent.url}/v1/models/stacked/infer`, { inputs: { input: { shape: [1, 1, 28, 28], data: Array.from(test.data.subarray(0, DIGIT_PIXELS)) } } });
  t.equal(one.body.backend, 'ensemble');
  t.same(one.body.outputs.scores.shape, [1, 10]);
  t.ok(Math.abs(one.body.outputs.scores.data.reduce((a: number, v: number) => a + v, 0) - 1) < 1e-5, 'the answer is a probability row');
  t.equal(one.body.predictions[0].index, argmax(one.body.outputs.scores.data));
  const broken = await postJson(`${agent.url}/v1/models/broken/infer`, { inputs: { input: { shape: [1, 1, 28, 28], data: Array.from(test.data.subarray(0, DIGIT_PIXELS)) } } });
  t.equal(broken.status, 500, 'a missing combiner fails the request');
  t.match(JSON.stringify(broken.body), /no-such-combiner\.onnx/, 'and names the file');

  const lone = edgeModel(['stack', join(dir, 'c2.onnx'), '--members', FP32, '--data', data, '--labels', join(dir, 'fit-labels.txt')]);
  t.equal(lone.code, 1);
  t.match(lone.stderr, /--members: a stacked ensemble fuses 2 or more models; got 1/);
});

// The toolkit's parts, each against an independent expectation: metrics on hand-worked
// examples, BatchNorm folding and graph simplification against ONNX Runtime on the original
// graph, pruning, dynamic quantization, range methods, weight rounding, progress output.
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as ort from 'onnxruntime-node';
import { DataType, decodeModel, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo, tensorData, type ModelProto } from '../agent/onnx/model.js';
import { writeNpy } from '../agent/tensor/npy.js';
import { calibrate, klThreshold } from '../tools/compress/calibrate.js';
import { OutputStats } from '../tools/compress/compare.js';
import { foldBatchNorms } from '../tools/compress/fold-batchnorm.js';
import { canonicalize } from '../tools/compress/graph.js';
import { accuracy, auc, binaryAuc, precisionRecallF1, predictedClasses, regression } from '../tools/compress/metrics.js';
import { writeModelFile } from '../tools/compress/model-file.js';
import { scratchDir } from './helpers/edge-model-cli.js';
import { Progress } from '../tools/compress/progress.js';
import { pruneFile } from '../tools/compress/prune.js';
import { quantizeWeights } from '../tools/compress/quant-math.js';
import { quantizeFile } from '../tools/compress/quantize.js';
import { simplify } from '../tools/compress/simplify.js';

// A private folder: tap's testdir path is shared by concurrent runs of the same file.
const dir = scratchDir(t);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}
const randoms = (n: number, seed: number, scale = 1) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 * scale);
};

async function run(model: ModelProto | Uint8Array, feeds: Record<string, Float32Array>, shapes: Record<string, number[]>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(model instanceof Uint8Array ? model : encodeModel(model));
  const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v, shapes[k])])));
  const r = out[s.outputNames[0]].data as Float32Array;
  await s.release();
  return r;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

t.test('metrics on hand-worked examples', async (t) => {
  const labels = [0, 0, 1, 1, 2, 2];
  const pred = [0, 1, 1, 1, 2, 0];
  t.equal(accuracy(pred, labels), 4 / 6);
  // class 0: tp1 fp1 fn1 -> p .5 r .5; class 1: tp2 fp1 fn0 -> p 2/3 r 1; class 2: tp1 fp0 fn1 -> p 1 r .5
  const prf = precisionRecallF1(pred, labels);
  t.ok(Math.abs(prf.precision - (0.5 + 2 / 3 + 1) / 3) < 1e-12, 'macro precision');
  t.ok(Math.abs(prf.recall - (0.5 + 1 + 0.5) / 3) < 1e-12, 'macro recall');
  t.ok(Math.abs(prf.f1 - (0.5 + 0.8 + 2 / 3) / 3) < 1e-12, 'macro F1');
  // AUC: positives {0.8, 0.4}, negatives {0.4, 0.1}: pairs (0.8>0.4) (0.8>0.1) (0.4=0.4 half) (0.4>0.1) = 3.5/4
  t.equal(binaryAuc([0.8, 0.4, 0.4, 0.1], [true, true, false, false]), 0.875);
  t.equal(auc(Float32Array.from([0.2, 0.8, 0.9, 0.1]), 2, [1, 0]), 1, 'two-column scores use the positive column');
  t.same(Array.from(predictedClasses(Float32Array.from([0.1, 0.7, 0.2, 0.5, 0.3, 0.2]), 3)), [1, 0]);
  t.same(Array.from(predictedClasses(Float32Array.from([0.2, 0.6]), 1)), [0, 1], 'a single column is a probability');
  const r = regression([1, 2, 4], [1, 3, 3]);
  t.equal(r.mse, 2 / 3);
  t.equal(r.mae, 2 / 3);
  // mean 7/3; total sum of squares (16+4+4)/9 = 24/9 -> r2 = 1 - 2 / (24/9) = 0.25
  t.ok(Math.abs(r.r2 - 0.25) < 1e-12);
});

t.test('compare statistics: SQNR, top-1 agreement, differences', async (t) => {
  const s = new OutputStats('y');
  s.add([1, 2, 3, 0], [1, 2, 3, 0], [2, 2]);
  t.equal(s.result().sqnrDb, Infinity, 'identical outputs have no noise');
  const n = new OutputStats('y');
  n.add([3, 4, 1, 0], [3, 4.1, 1, 0.2], [2, 2]);
  const r = n.result();
  t.ok(Math.abs(r.sqnrDb - 10 * Math.log10(26 / 0.05)) < 1e-9, `SQNR ${r.sqnrDb}`);
  t.equal(r.top1Agreement, 1);
  t.ok(Math.abs(r.maxAbsDiff - 0.2) < 1e-12);
  t.ok(Math.abs(r.meanAbsDiff - 0.075) < 1e-12);
  const flip = new OutputStats('y');
  flip.add([1, 0, 0, 1], [0, 1, 0, 1], [2, 2]);
  t.equal(flip.result().top1Agreement, 0.5);
});

function convBnModel(): ModelProto {
  const m = 4;
  return decodeModel(encodeModel(makeModel({
    name: 'convbn',
    node: [
      makeNode('Conv', ['x', 'w', 'b'], ['c'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('BatchNormalization', ['c', 'gamma', 'beta', 'mean', 'var'], ['y'], { epsilon: { float: 1e-3 } }),
    ],
    initializer: [
      makeTensor('w', [m, 2, 3, 3], randoms(m * 18, 1)),
      makeTensor('b', [m], randoms(m, 2)),
      makeTensor('gamma', [m], Float32Array.from([0.5, 2, -1, 1.5])),
      makeTensor('beta', [m], randoms(m, 3)),
      makeTensor('mean', [m], randoms(m, 4)),
      makeTensor('var', [m], Float32Array.from([0.1, 1, 4, 0.5])),
    ],
    input: [makeValueInfo('x', DataType.FLOAT, ['N', 2, 5, 5])],
    output: [makeValueInfo('y', DataType.FLOAT, ['N', m, 5, 5])],
  })));
}

t.test('BatchNorm folds into the Conv without changing its outputs', async (t) => {
  const model = convBnModel();
  const x = randoms(2 * 25, 9, 2);
  const before = await run(model, { x }, { x: [1, 2, 5, 5] });
  const g = canonicalize(model);
  t.equal(foldBatchNorms(g), 1);
  t.same(g.graph.node!.map((n) => n.opType), ['Conv']);
  const after = await run(model, { x }, { x: [1, 2, 5, 5] });
  t.ok(maxDiff(before, after) < 1e-4, `max difference ${maxDiff(before, after)}`);
});

t.test('a per-channel bias Add and a BatchNorm fold into a grouped ConvTranspose (PaddleOCR det\'s head) without changing its outputs', async (t) => {
  // ConvTranspose weights are [C, M/group, kh, kw]: the output channel is axis 1, within a group.
  const c = 4; const group = 2; const mg = 3; const m = mg * group;
  const model = decodeModel(encodeModel(makeModel({
    name: 'deconv-bn',
    node: [
      makeNode('ConvTranspose', ['x', 'w'], ['d'], { kernel_shape: [2, 2], strides: [2, 2], group }),
      makeNode('Add', ['d', 'bias'], ['a']),
      makeNode('BatchNormalization', ['a', 'gamma', 'beta', 'mean', 'var'], ['y'], { epsilon: { float: 1e-3 } }),
    ],
    initializer: [
      makeTensor('w', [c, mg, 2, 2], randoms(c * mg * 4, 11)),
      makeTensor('bias', [1, m, 1, 1], randoms(m, 12)),
      makeTensor('gamma', [m], Float32Array.from([0.5, 2, -1, 1.5, 3, 0.25])),
      makeTensor('beta', [m], randoms(m, 13)),
      makeTensor('mean', [m], randoms(m, 14)),
      makeTensor('var', [m], Float32Array.from([0.1, 1, 4, 0.5, 2, 0.3])),
    ],
    input: [makeValueInfo('x', DataType.FLOAT, ['N', c, 3, 3])],
    output: [makeValueInfo('y', DataType.FLOAT, ['N', m, 6, 6])],
  })));
  const x = randoms(c * 9, 15, 2);
  const before = await run(model, { x }, { x: [1, c, 3, 3] });
  const g = canonicalize(model);
  t.equal(foldBatchNorms(g), 1);
  t.same(g.graph.node!.map((n) => n.opType), ['ConvTranspose'], 'the Add and the BatchNorm are gone');
  const after = await run(model, { x }, { x: [1, c, 3, 3] });
  t.ok(maxDiff(before, after) < 1e-4, `max difference ${maxDiff(before, after)}`);
});

t.test('simplification keeps the results: hard-swish, Div, MatMul+Add, dynamic flatten', async (t) => {
  // x -> Conv -> hardswish spelled out -> GAP -> Shape/Slice/Concat/Reshape -> MatMul + b -> Div 2
  const model = decodeModel(encodeModel(makeModel({
    name: 'g',
    node: [
      makeNode('Conv', ['x', 'w'], ['c'], { kernel_shape: [1, 1] }),
      makeNode('Add', ['c', 'three'], ['a']),
      makeNode('Clip', ['a', 'zero', 'six'], ['cl']),
      makeNode('Mul', ['c', 'cl'], ['m']),
      makeNode('Div', ['m', 'six'], ['hs']),
      makeNode('GlobalAveragePool', ['hs'], ['gap']),
      makeNode('Shape', ['gap'], ['shape']),
      makeNode('Slice', ['shape', 'zero64', 'one64', 'zero64'], ['batch']),
      makeNode('Concat', ['batch', 'chans'], ['target'], { axis: 0 }),
      makeNode('Reshape', ['gap', 'target'], ['flat']),
      makeNode('MatMul', ['flat', 'fc'], ['mm']),
      makeNode('Add', ['mm', 'fcb'], ['logits']),
      makeNode('Div', ['logits', 'two'], ['y']),
    ],
    initializer: [
      makeTensor('w', [3, 2, 1, 1], randoms(6, 5, 2)),
      makeTensor('three', [], Float32Array.from([3])), makeTensor('zero', [], Float32Array.from([0])),
      makeTensor('six', [], Float32Array.from([6])), makeTensor('two', [], Float32Array.from([2])),
      makeTensor('zero64', [1], BigInt64Array.from([0n])), makeTensor('one64', [1], BigInt64Array.from([1n])),
      makeTensor('chans', [1], BigInt64Array.from([3n])),
      makeTensor('fc', [3, 2], randoms(6, 6)), makeTensor('fcb', [2], randoms(2, 7)),
    ],
    input: [makeValueInfo('x', DataType.FLOAT, ['N', 2, 4, 4])],
    output: [makeValueInfo('y', DataType.FLOAT, ['N', 2])],
  })));
  const x = randoms(2 * 2 * 16, 11, 6);
  const before = await run(model, { x }, { x: [2, 2, 4, 4] });
  const g = canonicalize(model);
  const r = simplify(model, g);
  t.same({ hs: r.hardSwish, div: r.divToMul, gemm: r.gemm, flat: r.flatten }, { hs: 1, div: 1, gemm: 1, flat: 1 });
  t.same(g.graph.node!.map((n) => n.opType), ['Conv', 'HardSwish', 'GlobalAveragePool', 'Flatten', 'Gemm', 'Mul']);
  const after = await run(model, { x }, { x: [2, 2, 4, 4] });
  t.ok(maxDiff(before, after) < 1e-5, `max difference ${maxDiff(before, after)}`);
});

function mlp(): ModelProto {
  return decodeModel(encodeModel(makeModel({
    name: 'mlp',
    node: [
      makeNode('MatMul', ['x', 'w1'], ['h']),
      makeNode('Relu', ['h'], ['r']),
      makeNode('Gemm', ['r', 'w2', 'b2'], ['y'], { transB: 1 }),
    ],
    initializer: [makeTensor('w1', [16, 32], randoms(512, 21, 0.5)), makeTensor('w2', [8, 32], randoms(256, 22, 0.5)), makeTensor('b2', [8], randoms(8, 23))],
    input: [makeValueInfo('x', DataType.FLOAT, ['N', 16])],
    output: [makeValueInfo('y', DataType.FLOAT, ['N', 8])],
  })));
}

t.test('dynamic quantization: DynamicQuantizeLinear + MatMulInteger, close to float', async (t) => {
  const fp = join(dir, 'mlp.onnx');
  writeModelFile(fp, mlp());
  const out = join(dir, 'mlp-dyn.onnx');
  const r = await quantizeFile(fp, out, { dynamic: true, perChannel: true, method: 'minmax', format: 'qdq' });
  t.same(r.quantized, { MatMul: 1, Gemm: 1 });
  const q = decodeModel(encodeModel(decodeModel(new Uint8Array(await import('node:fs').then((f) => f.readFileSync(out))))));
  const ops = q.graph!.node!.map((n) => n.opType);
  t.equal(ops.filter((o) => o === 'DynamicQuantizeLinear').length, 2);
  t.equal(ops.filter((o) => o === 'MatMulInteger').length, 2);
  t.notOk(ops.includes('MatMul') || ops.includes('Gemm'), 'no float product left');
  const x = randoms(4 * 16, 31, 2);
  const a = await run(mlp(), { x }, { x: [4, 16] });
  const b = await run(q, { x }, { x: [4, 16] });
  let s = 0;
  let e = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i] * a[i];
    e += (a[i] - b[i]) ** 2;
  }
  const sqnr = 10 * Math.log10(s / e);
  t.ok(sqnr > 30, `dynamic int8 SQNR ${sqnr.toFixed(1)} dB`);
});

t.test('pruning: exact unstructured sparsity; structured removes the weakest channels', async (t) => {
  const fp = join(dir, 'convbn.onnx');
  writeModelFile(fp, convBnModel());
  const out = join(dir, 'pruned.onnx');
  const r = pruneFile(fp, out, 0.5, false);
  t.equal(r.parameters, 72);
  t.equal(r.zeroed, 36, 'half of the 72 weights');
  const w = tensorData(decodeModel(new Uint8Array((await import('node:fs')).readFileSync(out))).graph!.initializer!.find((i) => i.name === 'w')!) as Float32Array;
  const orig = randoms(72, 1);
  const kept = Array.from(orig).map(Math.abs).sort((a, b) => a - b);
  const cut = kept[35];
  for (let i = 0; i < 72; i++) {
    if (Math.abs(orig[i]) > cut) t.equal(w[i], orig[i]);
  }
  t.equal(Array.from(w).filter((v) => v === 0).length, 36);

  const s = pruneFile(fp, out, 0.5, true);
  t.equal(s.zeroed, 36, 'two of four filters of 18 weights');
  const ws = tensorData(decodeModel(new Uint8Array((await import('node:fs')).readFileSync(out))).graph!.initializer!.find((i) => i.name === 'w')!) as Float32Array;
  const norms = [0, 1, 2, 3].map((c) => orig.slice(c * 18, c * 18 + 18).reduce((a, v) => a + v * v, 0));
  const weakest = [0, 1, 2, 3].sort((a, b) => norms[a] - norms[b]).slice(0, 2);
  for (let c = 0; c < 4; c++) {
    const zero = ws.slice(c * 18, c * 18 + 18).every((v) => v === 0);
    t.equal(zero, weakest.includes(c), `filter ${c} ${weakest.includes(c) ? 'pruned' : 'kept'}`);
  }
});

t.test('range methods: percentile and entropy clip the long tail that minmax keeps', async (t) => {
  // y = x through an identity-like Conv; the data has a few huge outliers.
  const model = decodeModel(encodeModel(makeModel({
    name: 'id',
    node: [makeNode('Conv', ['x', 'w'], ['y'], { kernel_shape: [1, 1] })],
    initializer: [makeTensor('w', [1, 1, 1, 1], Float32Array.from([1]))],
    input: [makeValueInfo('x', DataType.FLOAT, ['N', 1, 100, 100])],
    output: [makeValueInfo('y', DataType.FLOAT, ['N', 1, 100, 100])],
  })));
  const calib = join(dir, 'outliers');
  mkdirSync(calib);
  // Laplace-distributed values (|x| exponential, scale 1): a long thin tail, as activations have.
  const r = rng(77);
  const data = Float32Array.from({ length: 40000 }, () => {
    const u = r();
    return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u) + 1e-12);
  });
  const maxAbs = data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  writeNpy(join(calib, 'a.npy'), { dtype: 'float32', shape: [4, 1, 100, 100], data });
  const mm = await calibrate(model, ['x', 'y'], calib, { method: 'minmax' });
  t.ok(Math.abs(mm.ranges.get('y')!.max - data.reduce((m, v) => Math.max(m, v), -Infinity)) < 1e-6, 'minmax keeps the largest value');
  t.equal(mm.samples, 4);
  const pc = await calibrate(model, ['y'], calib, { method: 'percentile', percentile: 99 });
  // 99% kept: 0.5% in each tail, |x| > ln(100) = 4.6 for a unit Laplace.
  t.ok(Math.abs(pc.ranges.get('y')!.max - Math.log(100)) < 0.3, `percentile max ${pc.ranges.get('y')!.max} near ln(100)`);
  const en = await calibrate(model, ['y'], calib, { method: 'entropy' });
  const e = en.ranges.get('y')!;
  t.ok(e.max < maxAbs * 0.9 && e.max > 2, `entropy clips the tail: max ${e.max.toFixed(2)} of ${maxAbs.toFixed(2)}`);
  t.ok(e.min > -maxAbs * 0.9 && e.min < -2, `and symmetrically: min ${e.min.toFixed(2)}`);
  // A flat histogram has nothing to clip.
  t.equal(klThreshold(new Float64Array(2048).fill(1), 128), 2048);
});

t.test('weights round to int8 per channel within half a step', async (t) => {
  const w = Float32Array.from([0.5, -1, 0.25, 0.01, 0.02, -0.04]);
  const q = quantizeWeights(w, [2, 3], 0);
  t.same(Array.from(q.scales), [Math.fround(1 / 127), Math.fround(0.04 / 127)]);
  t.same(Array.from(q.q.slice(0, 3)), [64, -127, 32]);
  for (let i = 0; i < 6; i++) t.ok(Math.abs(q.q[i] * q.scales[Math.floor(i / 3)] - w[i]) <= q.scales[Math.floor(i / 3)] / 2 + 1e-9);
  const pt = quantizeWeights(w, [2, 3], null);
  t.equal(pt.scales.length, 1);
  t.equal(pt.q[3], 1, 'per tensor, the small channel keeps ~1 step');
  // A dead channel (PP-OCRv4 rec has weights of 1e-40): zeros at scale 1, not a scale so small
  // that input_scale * weight_scale underflows float32 and the bias overflows int32.
  const dead = quantizeWeights(Float32Array.from([0.5, -1, 0.25, 3e-40, -2e-40, 1e-41]), [2, 3], 0);
  t.same(Array.from(dead.scales), [Math.fround(1 / 127), 1], 'the dead channel has scale 1');
  t.same(Array.from(dead.q.slice(3)), [0, 0, 0], 'and weights 0');
});

t.test('progress shows on a terminal and stays quiet when piped', async (t) => {
  const capture = (tty: boolean) => {
    let text = '';
    const stream = new Writable({ write(c, _e, cb) { text += String(c); cb(); } }) as unknown as NodeJS.WriteStream;
    (stream as { isTTY?: boolean }).isTTY = tty;
    const p = new Progress('calibrating', 3, stream);
    p.tick();
    p.tick(2);
    p.end();
    return text;
  };
  t.match(capture(true), /calibrating: 3\/3 \(100%\)/);
  t.equal(capture(false), '');
});

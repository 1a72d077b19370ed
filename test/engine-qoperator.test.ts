// Parity with ONNX Runtime on a QOperator-form graph (QLinearConv, QLinearMatMul and the
// com.microsoft QLinearAdd / QLinearMul / QLinearGlobalAveragePool / QLinearAveragePool /
// QLinearSigmoid / QLinearLeakyRelu), with int8 and with uint8 (zero point 128) weights.
import t from 'tap';
import * as ort from 'onnxruntime-node';
import { DataType, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo, type NodeProto, type TensorProto } from '../agent/onnx/model.js';
import { NativeBackend } from '../agent/runtime/native/index.js';
import { randomInput, rng } from './helpers/engine-graphs.js';

const MS = 'com.microsoft';

function build(seed: number, variant: 'int8-weights' | 'uint8-weights'): { bytes: Uint8Array; outScale: number; rand: () => number } {
  const rand = rng(seed);
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let n = 0;
  const c = (data: Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array, shape: number[]): string => {
    const name = `k${n++}`;
    inits.push(makeTensor(name, shape, data));
    return name;
  };
  const s = (v: number): string => c(new Float32Array([v]), []);
  const z = (v: number): string => c(new Uint8Array([v]), []);
  const weights = (count: number, shape: number[]): string => {
    const w = new Int8Array(count);
    for (let i = 0; i < count; i++) w[i] = Math.floor(rand() * 127) - 63;
    return c(w, shape);
  };
  const bias = (count: number): string => {
    const b = new Int32Array(count);
    for (let i = 0; i < count; i++) b[i] = Math.floor((rand() - 0.5) * 3000);
    return c(b, [count]);
  };
  const perChannel = (k: number): Float32Array => Float32Array.from({ length: k }, () => 0.003 + rand() * 0.006);

  if (variant === 'int8-weights') {
    // x [N,3,12,12] -> QuantizeLinear -> QLinearConv 3x3 (8, per-channel) -> MaxPool
    nodes.push(makeNode('QuantizeLinear', ['x', s(0.02), z(128)], ['xq']));
    const w1s = perChannel(8);
    nodes.push(makeNode('QLinearConv', ['xq', s(0.02), z(128), weights(8 * 3 * 9, [8, 3, 3, 3]), c(w1s, [8]), c(new Int8Array(8), [8]), s(0.05), z(100), bias(8)], ['c1'],
      { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }));
    nodes.push(makeNode('MaxPool', ['c1'], ['p1'], { kernel_shape: [2, 2], strides: [2, 2] }));
    // depthwise 3x3 on [N,8,6,6], then a residual QLinearAdd and a QLinearMul by itself
    nodes.push(makeNode('QLinearConv', ['p1', s(0.05), z(100), weights(8 * 9, [8, 1, 3, 3]), s(0.005), c(new Int8Array([0]), []), s(0.06), z(128), bias(8)], ['c2'],
      { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 8 }));
    nodes.push(makeNode('QLinearAdd', ['c2', s(0.06), z(128), 'p1', s(0.05), z(100), s(0.08), z(110)], ['a1'], {}, 'add', MS));
    nodes.push(makeNode('QLinearMul', ['a1', s(0.08), z(110), 'c2', s(0.06), z(128), s(0.1), z(128)], ['m1'], {}, 'mul', MS));
    nodes.push(makeNode('QLinearGlobalAveragePool', ['m1', s(0.1), z(128), s(0.05), z(128)], ['g1'], { channels_last: 0 }, 'gap', MS));
  } else {
    // uint8 weights with zero point 128, QLinearLeakyRelu, QLinearAveragePool with padding
    nodes.push(makeNode('QuantizeLinear', ['x', s(0.02), z(128)], ['xq']));
    const wu = new Uint8Array(8 * 3 * 9);
    for (let i = 0; i < wu.length; i++) wu[i] = 128 + Math.floor(rand() * 127) - 63;
    nodes.push(makeNode('QLinearConv', ['xq', s(0.02), z(128), c(wu, [8, 3, 3, 3]), s(0.006), z(128), s(0.05), z(128), bias(8)], ['c1'],
      { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] }));
    nodes.push(makeNode('QLinearLeakyRelu', ['c1', s(0.05), z(128), s(0.04), z(60)], ['l1'], { alpha: 0.2 }, 'leaky', MS));
    nodes.push(makeNode('QLinearAveragePool', ['l1', s(0.04), z(60), s(0.03), z(70)], ['a1'],
      { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 0 }, 'avg', MS));
    nodes.push(makeNode('QLinearGlobalAveragePool', ['a1', s(0.03), z(70), s(0.05), z(128)], ['g1'], { channels_last: 0 }, 'gap', MS));
  }
  nodes.push(makeNode('Flatten', ['g1'], ['f1'], { axis: 1 }));
  // QLinearMatMul [N,8] x [8,6] (int8 B), then a sigmoid table and the float output
  nodes.push(makeNode('QLinearMatMul', ['f1', s(0.05), z(128), weights(8 * 6, [8, 6]), s(0.01), c(new Int8Array([0]), []), s(0.04), z(128)], ['mm']));
  nodes.push(makeNode('QLinearSigmoid', ['mm', s(0.04), z(128), s(1 / 256), z(0)], ['sg'], {}, 'sig', MS));
  const outScale = 1 / 256;
  nodes.push(makeNode('DequantizeLinear', ['sg', s(outScale), z(0)], ['y']));
  const model = makeModel({
    name: 'qop', node: nodes, initializer: inits,
    input: [makeValueInfo('x', DataType.FLOAT, ['N', 3, 12, 12])],
    output: [makeValueInfo('y', DataType.FLOAT, ['N', 6])],
  }, 13);
  model.opsetImport!.push({ domain: MS, version: 1 });
  return { bytes: encodeModel(model), outScale, rand };
}

for (const variant of ['int8-weights', 'uint8-weights'] as const) t.test(`a QOperator graph (${variant}) agrees with ONNX Runtime within one step`, async (t) => {
  const { bytes, outScale, rand } = build(11, variant);
  const session = await ort.InferenceSession.create(bytes);
  const native = NativeBackend.load(bytes, { name: 'qoperator' });
  t.teardown(async () => { await native.dispose(); await session.release(); });
  let worst = 0; const levels = new Set<number>();
  for (const batch of [1, 4]) {
    const shape = [batch, 3, 12, 12];
    const data = randomInput(rand, shape, 0.02, 128);
    const ref = (await session.run({ x: new ort.Tensor('float32', data, shape) })).y;
    const got = (await native.run({ x: { dtype: 'float32', shape, data } })).y;
    t.same(got.shape, ref.dims, `output shape at batch ${batch}`);
    const r = ref.data as Float32Array; const g = got.data as Float32Array;
    for (let i = 0; i < r.length; i++) {
      worst = Math.max(worst, Math.abs(r[i] - g[i]) / outScale);
      levels.add(Math.round(r[i] / outScale));
    }
  }
  t.ok(worst <= 1.001, `worst difference ${worst.toFixed(3)} steps (at most 1)`);
  t.ok(levels.size > 6, `the output is not constant (${levels.size} levels)`);
  const d = native.describe();
  t.ok((d.steps as number) < (d.onnxNodes as number) + 2, `${d.onnxNodes} ONNX nodes became ${d.steps} engine steps`);
});

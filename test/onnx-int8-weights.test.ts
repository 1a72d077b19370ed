// withUint8Weights (agent/onnx/int8-weights.ts): int8 weights rewritten as uint8 (w + 128,
// zero point + 128) compute the same numbers in ONNX Runtime, with an explicit zero point
// and without one; an operator whose zero point is not a constant is left alone and no
// uint8 copy is added for it.
import t from 'tap';
import * as ort from 'onnxruntime-node';
import { DataType, decodeModel, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo, tensorData, type ModelProto } from '../agent/onnx/model.js';
import { int8Weights, withUint8Weights } from '../agent/onnx/int8-weights.js';

t.setTimeout(60_000);

/** x [N,8] uint8 -> MatMulInteger with W1 [8,4] (zero points given) and W2 [8,4] (no zero points, or from an input) -> sum. */
function model(opts: { w2ZeroPointFromInput?: boolean } = {}): ModelProto {
  const w1 = Int8Array.from({ length: 32 }, (_, i) => ((i * 37) % 255) - 127);
  const w2 = Int8Array.from({ length: 32 }, (_, i) => ((i * 53) % 200) - 100);
  const inits = [
    makeTensor('w1', [8, 4], w1),
    makeTensor('w1_zp', [], new Int8Array([3])),
    makeTensor('w2', [8, 4], w2),
    makeTensor('x_zp', [], new Uint8Array([128])),
  ];
  const input = [makeValueInfo('x', DataType.UINT8, ['N', 8])];
  if (opts.w2ZeroPointFromInput) input.push(makeValueInfo('w2_zp', DataType.INT8, []));
  return decodeModel(encodeModel(makeModel({
    name: 'mmi',
    node: [
      makeNode('MatMulInteger', ['x', 'w1', 'x_zp', 'w1_zp'], ['a']),
      makeNode('MatMulInteger', opts.w2ZeroPointFromInput ? ['x', 'w2', 'x_zp', 'w2_zp'] : ['x', 'w2'], ['b']),
      makeNode('Add', ['a', 'b'], ['y']),
    ],
    initializer: inits,
    input,
    output: [makeValueInfo('y', DataType.INT32, ['N', 4])],
  }, 13)));
}

async function run(m: ModelProto, feeds: Record<string, ort.Tensor>): Promise<Int32Array> {
  const s = await ort.InferenceSession.create(encodeModel(m));
  try {
    return (await s.run(feeds)).y!.data as Int32Array;
  } finally {
    await s.release();
  }
}

const x = new ort.Tensor('uint8', Uint8Array.from({ length: 3 * 8 }, (_, i) => (i * 97) % 256), [3, 8]);

/** The exact integer result, computed here. */
function exact(m: ModelProto, w2zp = 0, x2zp = 0): Int32Array {
  const init = (n: string) => tensorData(m.graph!.initializer!.find((t) => t.name === n)!) as Int8Array;
  const [w1, w2] = [init('w1'), init('w2')];
  const w1zp = init('w1_zp')[0]!;
  const xs = x.data as Uint8Array;
  const y = new Int32Array(12);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) {
    let acc = 0;
    for (let k = 0; k < 8; k++) acc += (xs[r * 8 + k]! - 128) * (w1[k * 4 + c]! - w1zp) + (xs[r * 8 + k]! - x2zp) * (w2[k * 4 + c]! - w2zp);
    y[r * 4 + c] = acc;
  }
  return y;
}

t.test('int8 weights as uint8: the same integers, with and without a zero point', async (t) => {
  const m = model();
  t.same(int8Weights(m).tensors.sort(), ['w1', 'w2']);
  const u = withUint8Weights(m)!;
  t.ok(u, 'rewritten');
  const back = decodeModel(encodeModel(u));
  const types = new Map(back.graph!.initializer!.map((i) => [i.name, i.dataType]));
  t.notOk([...types.values()].includes(DataType.INT8), 'no int8 initializer is left');
  t.same(int8Weights(back).tensors, [], 'and no int8 weight');
  const want = exact(m);
  t.same([...await run(m, { x })], [...want], 'the int8 model is exact here');
  t.same([...await run(back, { x })], [...want], 'the uint8 form gives the exact integers');
  t.same(m.graph!.initializer!.map((i) => i.name), ['w1', 'w1_zp', 'w2', 'x_zp'], 'the input model is not modified');
});

t.test('a zero point that is not a constant: that operator is left alone, nothing unused is added', async (t) => {
  const m = model({ w2ZeroPointFromInput: true });
  const u = withUint8Weights(m)!;
  const names = u.graph!.initializer!.map((i) => i.name);
  const used = new Set(u.graph!.node!.flatMap((n) => n.input ?? []));
  t.same(names.filter((n) => !used.has(n!)), [], `every initializer is used (${names.join(', ')})`);
  const w2node = u.graph!.node!.find((n) => n.input?.[3] === 'w2_zp')!;
  t.equal(w2node.input![1], 'w2', 'the MatMulInteger with a non-constant zero point keeps its int8 weight');
  t.ok(names.includes('w2'), 'whose int8 tensor stays');
  const feeds = { x, w2_zp: new ort.Tensor('int8', new Int8Array([-5]), []) };
  t.same([...await run(decodeModel(encodeModel(u)), feeds)], [...exact(m, -5, 128)], 'and the model still computes the exact integers');
});

import t from 'tap';
import * as ort from 'onnxruntime-node';
import { DataType, decodeModel, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo, tensorData } from '../agent/onnx/model.js';

t.test('a graph built here runs in ONNX Runtime and reads back', async (t) => {
  const w = new Float32Array([1, 2, 3, 4, 5, 6]);
  const bytes = encodeModel(makeModel({
    name: 'g',
    node: [makeNode('MatMul', ['x', 'w'], ['y'])],
    initializer: [makeTensor('w', [3, 2], w)],
    input: [makeValueInfo('x', DataType.FLOAT, ['N', 3])],
    output: [makeValueInfo('y', DataType.FLOAT, ['N', 2])],
  }));
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 1, 1]), [1, 3]) });
  t.same(Array.from(out.y.data as Float32Array), [9, 12], 'MatMul of ones by w sums its columns');
  const back = decodeModel(bytes);
  t.same(Array.from(tensorData(back.graph!.initializer![0]) as Float32Array), Array.from(w), 'initializer round-trips');
});

t.test('bytes that are not ONNX are refused with a clear error', async (t) => {
  t.throws(() => decodeModel(new TextEncoder().encode('hello, not a model'), 'x.onnx'), { code: 'EDGE_ONNX_INVALID', message: /x.onnx is not an ONNX model/ });
  t.throws(() => decodeModel(new Uint8Array(0), 'empty.onnx'), /no graph nodes/);
});

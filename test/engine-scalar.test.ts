// The portable paths (kernels forced to the scalar variant, the engine's own loops without
// SIMD: what a CPU without AVX2/NEON dot products runs) agree with ONNX Runtime too, where
// ONNX Runtime is exact (test/helpers/ort-reference.ts).
// EDGE_KERNELS is read once, when the addon first picks a variant, so it is set before loading.
process.env.EDGE_KERNELS = 'scalar';
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ortReference, worstSteps as stepsApart } from './helpers/ort-reference.js';
import { packageRoot } from '../agent/native.js';
import { NativeBackend } from '../agent/runtime/native/index.js';
import { QdqGraph, randomInput } from './helpers/engine-graphs.js';

async function worstSteps(bytes: Uint8Array, inName: string, shape: number[], data: Float32Array, step: number): Promise<{ worst: number; worstPlain: number; plainIsExact: boolean; variant: unknown }> {
  const ref = await ortReference(bytes);
  const native = NativeBackend.load(bytes);
  const outName = ref.exact.outputNames[0];
  const feeds = { [inName]: new ort.Tensor('float32', data, shape) };
  const exact = (await ref.exact.run(feeds))[outName].data as Float32Array;
  const plain = (await ref.plain.run(feeds))[outName].data as Float32Array;
  const got = (await native.run({ [inName]: { dtype: 'float32', shape, data } }))[outName].data as Float32Array;
  const variant = native.describe().kernelVariant;
  await native.dispose(); await ref.release();
  return { worst: stepsApart(exact, got, step), worstPlain: stepsApart(plain, got, step), plainIsExact: ref.plainIsExact, variant };
}

t.test('scalar variant: a generated graph with a few-channel first conv', async (t) => {
  const g = new QdqGraph(21);
  const x = g.input('x', [1, 2, 14, 14], 0.02, 128);
  let y = g.conv(x, 12, 3, { pad: 1, act: 'relu', perChannel: true }); // engine's direct conv (1-2 input channels)
  y = g.conv(y, 12, 3, { pad: 1, group: 12, act: 'relu6' });           // kernels' depthwise
  y = g.conv(y, 16, 3, { stride: 2 });                                  // kernels' im2col
  y = g.gemm(g.flatten(g.globalAvgPool(y)), 10, {});
  const bytes = g.model('x', ['N', 2, 14, 14], y);
  const shape = [2, 2, 14, 14];
  const r = await worstSteps(bytes, 'x', shape, randomInput(g.rand, shape, 0.02, 128), y.scale);
  t.equal(r.variant, 'scalar', 'the scalar kernels were used');
  t.ok(r.worst <= 1.001, `worst difference ${r.worst.toFixed(3)} steps`);
  if (r.plainIsExact) t.ok(r.worstPlain <= 1.001, `plain ONNX Runtime (exact here): ${r.worstPlain.toFixed(3)} steps`);
});

t.test('scalar variant: the int8 digits model', async (t) => {
  const bytes = readFileSync(path.join(packageRoot, 'models/digits-int8/model.onnx'));
  const data = new Float32Array(4 * 784);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 256) / 255;
  // One logit step is the scale of the DequantizeLinear that produces the output.
  const { decodeModel, tensorData } = await import('../agent/onnx/model.js');
  const m = decodeModel(bytes);
  const dq = m.graph!.node!.find((n) => n.output?.includes(m.graph!.output![0].name!))!;
  const step = Number(tensorData(m.graph!.initializer!.find((i) => i.name === dq.input![1])!)[0]);
  const r = await worstSteps(bytes, 'input', [4, 1, 28, 28], data, step);
  t.equal(r.variant, 'scalar');
  t.ok(r.worst <= 1.001, `worst difference ${r.worst.toFixed(3)} steps`);
  if (r.plainIsExact) t.ok(r.worstPlain <= 1.001, `plain ONNX Runtime (exact here): ${r.worstPlain.toFixed(3)} steps`);
  else t.comment(`plain ONNX Runtime saturates here: ${r.worstPlain.toFixed(3)} steps from the scalar oracle`);
});

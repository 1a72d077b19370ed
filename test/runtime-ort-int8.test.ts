// ONNX Runtime's int8 saturation, as the runtime handles it. On x86 without VNNI, ONNX Runtime
// adds pairs of u8 x s8 products in saturating int16; the detection is forced here with
// EDGE_ORT_SATURATES so the behaviour of such a CPU is tested on any CPU (compress-*.test.ts
// show the saturation itself under qemu's Haswell). 'auto' keeps the int8 model on the native
// engine and says why in /v1/status; a model sent to ONNX Runtime runs with uint8 weights,
// which ONNX Runtime computes exactly, so both backends agree within one step.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeModel, tensorData } from '../agent/onnx/model.js';
import { digitBatch, FP32, INT8, postJson, startAgent } from './helpers/model-packages.js';

t.setTimeout(120_000);

const step = (() => {
  const m = decodeModel(readFileSync(path.join(INT8, 'model.onnx')));
  const dq = m.graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.output?.[0] === 'logits')!;
  return (tensorData(m.graph!.initializer!.find((i) => i.name === dq.input![1])!) as Float32Array)[0]!;
})();

async function choices(saturates: '1' | '0') {
  process.env.EDGE_ORT_SATURATES = saturates;
  const agent = await startAgent({
    models: [
      { name: 'int8-auto', package: INT8, backend: 'auto' },
      { name: 'int8-ort', package: INT8, backend: 'ort' },
      { name: 'fp32-ort', package: FP32, backend: 'ort' },
    ],
    runtime: { threads: 1 },
  });
  const status = await (await fetch(`${agent.url}/v1/status`)).json() as any;
  const choice = (name: string) => status.models.models.find((m: any) => m.name === name).active.backendChoice;
  const batch = digitBatch(200, 32);
  const body = { inputs: { input: { shape: batch.shape, data: Array.from(batch.data) } } };
  const [a, b] = await Promise.all(['int8-auto', 'int8-ort'].map((m) => postJson(`${agent.url}/v1/models/${m}/infer`, body)));
  const worst = Math.max(...(a!.body.outputs.logits.data as number[]).map((v, i) => Math.abs(v - b!.body.outputs.logits.data[i]) / step));
  await agent.stop();
  return { auto: choice('int8-auto'), ort: choice('int8-ort'), fp32: choice('fp32-ort'), worst, backends: [a!.body.backend, b!.body.backend] };
}

t.test('a CPU where ONNX Runtime saturates: auto keeps the native engine and says why; ONNX Runtime runs uint8 weights', async (t) => {
  const c = await choices('1');
  t.match(c.auto, { requested: 'auto', chosen: 'native', reason: /ONNX Runtime saturates int8 products on this CPU \(EDGE_ORT_SATURATES=1\)/ }, `auto: ${c.auto.reason}`);
  t.match(c.ort, { requested: 'ort', chosen: 'ort', reason: /runs them as uint8 weights, which it computes exactly/ }, `ort: ${c.ort.reason}`);
  t.notOk(c.ort.warning, 'no warning: the uint8 form is exact');
  t.same(c.fp32, { requested: 'ort', chosen: 'ort', reason: 'configured' }, 'a float model has nothing to saturate');
  t.same(c.backends, ['native', 'ort']);
  t.ok(c.worst <= 1.0001, `native and ONNX Runtime agree within one step: ${c.worst.toFixed(3)}`);
});

t.test('a CPU where ONNX Runtime is exact: the model runs as it is', async (t) => {
  const c = await choices('0');
  t.same(c.ort, { requested: 'ort', chosen: 'ort', reason: 'configured; ONNX Runtime is exact here (EDGE_ORT_SATURATES=0)' });
  t.match(c.auto, { chosen: 'native', reason: /^auto: every operator is supported$/ }, 'auto: no saturation note');
  t.ok(c.worst <= 1.0001, `native and ONNX Runtime agree within one step: ${c.worst.toFixed(3)}`);
});

// The runtime's choice with the partitioned backend: `backend: partitioned` in the model config
// runs a model the engine supports only in part, 'auto' times the partitioned backend against
// ONNX Runtime at warm-up and keeps the faster, and /v1/status shows the choice, the reason with
// the figures, and the partition. A real agent on an ephemeral port, with the digits int8 model
// given an Erf (an operator the engine lacks) between its two convolutions.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeModel, encodeModel, makeNode, makeTensor, tensorData } from '../agent/onnx/model.js';
import { isSupportedOp } from '../agent/runtime/native/support.js';
import { parseConfig } from '../agent/config/load.js';
import { copyPackage, digitBatch, INT8, postJson, replaceFile, startAgent, tempDir } from './helpers/model-packages.js';

t.setTimeout(180_000);

/** digits-int8 with p1 -> Erf -> QuantizeLinear(1/255, 0) -> DequantizeLinear -> conv2. */
function digitsWithErf(): string {
  const m = decodeModel(readFileSync(path.join(INT8, 'model.onnx')));
  const g = m.graph!;
  g.initializer!.push(makeTensor('erf_s', [], new Float32Array([1 / 255])), makeTensor('erf_zp', [], new Uint8Array([0])));
  const conv2 = g.node!.findIndex((n) => n.opType === 'Conv' && n.input![0] === 'p1_dq');
  g.node!.splice(conv2, 0,
    makeNode('Erf', ['p1_dq'], ['erf']),
    makeNode('QuantizeLinear', ['erf', 'erf_s', 'erf_zp'], ['erf_q']),
    makeNode('DequantizeLinear', ['erf_q', 'erf_s', 'erf_zp'], ['erf_dq']));
  g.node![conv2 + 3].input![0] = 'erf_dq';
  const dir = copyPackage(INT8, tempDir('edge-partition-'));
  replaceFile(dir, 'model.onnx', encodeModel(m));
  return dir;
}

const step = (() => {
  const m = decodeModel(readFileSync(path.join(INT8, 'model.onnx')));
  const dq = m.graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.output?.[0] === 'logits')!;
  return (tensorData(m.graph!.initializer!.find((i) => i.name === dq.input![1])!) as Float32Array)[0]!;
})();

t.test('config: backend "partitioned" is accepted, a misspelling is refused naming the field and the choices', async (t) => {
  const base = { deviceId: 'p-1', dataDir: 'data' };
  const ok = parseConfig({ ...base, models: [{ name: 'm', package: 'pkg', backend: 'partitioned' }] }, 'test config', tempDir());
  t.equal(ok.models[0].backend, 'partitioned');
  t.throws(() => parseConfig({ ...base, models: [{ name: 'm', package: 'pkg', backend: 'partial' }] }, 'test config', tempDir()), /\/models\/0\/backend/);
});

t.test('/v1/status: partitioned when configured, and auto picks by measuring, saying why', { skip: isSupportedOp('Erf', '') ? 'the engine has Erf now: the model runs natively whole' : false }, async (t) => {
  const pkg = digitsWithErf();
  const agent = await startAgent({
    models: [
      { name: 'erf-partitioned', package: pkg, backend: 'partitioned' },
      { name: 'erf-auto', package: pkg, backend: 'auto' },
      { name: 'erf-ort', package: pkg, backend: 'ort' },
    ],
    runtime: { threads: 1 },
  });
  t.teardown(() => agent.stop());
  const status = await (await fetch(`${agent.url}/v1/status`)).json() as any;
  const active = (name: string) => status.models.models.find((m: any) => m.name === name).active;

  const part = active('erf-partitioned');
  t.match(part.backendChoice, { requested: 'partitioned', chosen: 'partitioned', reason: /^configured; \d+ of \d+ nodes native in 2 segments; on ONNX Runtime: Erf$/ }, `reason: ${part.backendChoice.reason}`);
  t.match(part.backendDetails, { backend: 'partitioned', unsupported: ['Erf'], segments: [{ side: 'native' }, { side: 'ort' }, { side: 'native' }] }, 'the partition in backendDetails');

  const auto = active('erf-auto');
  t.match(auto.backendChoice.reason, /^auto: native engine declined \(.*Erf.*\); measured at warm-up: partitioned [\d.]+ ms \(.*\), ONNX Runtime [\d.]+ ms: (partitioned|ONNX Runtime) is faster/, `auto says why: ${auto.backendChoice.reason}`);
  const [, partMs, ortMs] = /partitioned ([\d.]+) ms .*ONNX Runtime ([\d.]+) ms/.exec(auto.backendChoice.reason)!;
  t.equal(auto.backendChoice.chosen, Number(partMs) <= Number(ortMs) ? 'partitioned' : 'ort', 'the faster one was kept');
  t.comment(`auto: ${auto.backendChoice.chosen} (partitioned ${partMs} ms, ONNX Runtime ${ortMs} ms)`);

  // Same answers as ONNX Runtime alone, within one step of the logits.
  const batch = digitBatch(300, 8);
  const body = { inputs: { input: { shape: batch.shape, data: Array.from(batch.data) } } };
  const [a, o] = await Promise.all(['erf-partitioned', 'erf-ort'].map((m) => postJson(`${agent.url}/v1/models/${m}/infer`, body)));
  t.equal(a!.status, 200, JSON.stringify(a!.body).slice(0, 300));
  t.equal(a!.body.backend, 'partitioned', 'the response names the backend');
  const worst = Math.max(...(a!.body.outputs.logits.data as number[]).map((v, i) => Math.abs(v - o!.body.outputs.logits.data[i]) / step));
  t.ok(worst <= 1.001, `partitioned vs ONNX Runtime: worst ${worst.toFixed(3)} steps of the logits (at most 1)`);
});

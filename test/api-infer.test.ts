// The inference API over real HTTP: the sample digit models on both backends, every input
// form, and bad bodies refused with what was expected while the agent keeps serving.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeModel, tensorData } from '../agent/onnx/model.js';
import { argmax, digitBatch, FP32, INT8, postJson, startAgent, FP32_VERSION, INT8_VERSION } from './helpers/model-packages.js';

const agentP = startAgent({
  models: [
    { name: 'digits-fp32', package: FP32, backend: 'ort' },
    { name: 'digits-int8-ort', package: INT8, backend: 'ort' },
    { name: 'digits-int8-native', package: INT8, backend: 'native' },
    { name: 'digits-int8-auto', package: INT8, backend: 'auto' },
    { name: 'digits-fp32-auto', package: FP32, backend: 'auto' },
  ],
  health: { bodyLimitBytes: 256 * 1024 },
  runtime: { threads: 1 },
});
t.teardown(async () => (await agentP).stop());

const infer = async (model: string, body: unknown, raw?: string) => postJson(`${(await agentP).url}/v1/models/${model}/infer`, body, raw);

t.test('each model serves held-out digits over HTTP with its backend, and mostly right', async (t) => {
  const batch = digitBatch(0, 40);
  for (const [model, backend, version] of [['digits-fp32', 'ort', FP32_VERSION], ['digits-int8-ort', 'ort', INT8_VERSION], ['digits-int8-native', 'native', INT8_VERSION]]) {
    const res = await infer(model!, { inputs: { input: { shape: batch.shape, data: Array.from(batch.data) } } });
    t.equal(res.status, 200, `${model}: 200`);
    t.equal(res.body.backend, backend, `${model} runs on ${backend}`);
    t.equal(res.body.version, version, `${model} reports its version`);
    t.ok(res.body.latencyMs > 0, `${model} reports a latency`);
    const logits = res.body.outputs.logits;
    t.same(logits.shape, [40, 10], `${model}: one row of 10 logits per digit`);
    let right = 0;
    for (let i = 0; i < 40; i++) {
      const row = logits.data.slice(i * 10, i * 10 + 10);
      t.equal(res.body.predictions[i].index, argmax(row), `${model}: prediction ${i} is the argmax of its logits`);
      if (argmax(row) === batch.labels[i]) right++;
    }
    t.ok(right >= 36, `${model}: ${right}/40 held-out digits right (>= 90%)`);
  }
});

t.test('the native engine and ONNX Runtime agree on the int8 model over HTTP', async (t) => {
  // One quantization step of the output: the scale of the DequantizeLinear that makes "logits".
  const proto = decodeModel(readFileSync(path.join(INT8, 'model.onnx')));
  const dq = proto.graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.output?.[0] === 'logits');
  t.ok(dq, 'the int8 sample quantizes its output (a DequantizeLinear makes "logits")');
  const scaleInit = proto.graph!.initializer!.find((i) => i.name === dq?.input?.[1]);
  const step = scaleInit ? (tensorData(scaleInit) as Float32Array)[0]! : 0;
  t.ok(step > 0, `output step ${step}`);
  const batch = digitBatch(100, 16);
  const body = { inputs: { input: { shape: batch.shape, data: Array.from(batch.data) } } };
  const [a, b] = await Promise.all([infer('digits-int8-ort', body), infer('digits-int8-native', body)]);
  t.equal(a.body.backend, 'ort');
  t.equal(b.body.backend, 'native');
  const ort: number[] = a.body.outputs.logits.data;
  const native: number[] = b.body.outputs.logits.data;
  t.equal(native.length, ort.length);
  const worst = Math.max(...ort.map((v, i) => Math.abs(v - native[i]!)));
  t.ok(worst <= step * 1.0001, `largest difference ${worst} is within one quantization step (${step})`);
});

t.test('nested arrays, flat data with shape, and base64 buffers give the same answer', async (t) => {
  const one = digitBatch(7, 1);
  const flat = Array.from(one.data);
  const nested = [[Array.from({ length: 28 }, (_, y) => flat.slice(y * 28, y * 28 + 28))]];
  const b64 = Buffer.from(one.data.buffer, one.data.byteOffset, one.data.byteLength).toString('base64');
  const r1 = await infer('digits-fp32', { inputs: { input: nested } });
  const r2 = await infer('digits-fp32', { inputs: { input: { shape: [1, 1, 28, 28], data: flat } } });
  const r3 = await infer('digits-fp32', { inputs: { input: { shape: [1, 1, 28, 28], dtype: 'float32', base64: b64 } }, outputEncoding: 'base64' });
  t.equal(r1.status, 200);
  t.same(r1.body.outputs.logits, r2.body.outputs.logits, 'nested == flat');
  const out = Buffer.from(r3.body.outputs.logits.base64, 'base64');
  const logits = Array.from(new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4));
  t.same(logits, r2.body.outputs.logits.data, 'base64 in and out == flat');
  t.same(r3.body.outputs.logits.shape, [1, 10]);
});

t.test('bad bodies get 400 saying what was expected; the agent keeps serving', async (t) => {
  const expected = 'float32 with shape [N, 1, 28, 28]';
  const cases: [string, unknown, string?][] = [
    ['wrong rank (nested)', { inputs: { input: [[1, 2, 3]] } }],
    ['wrong shape (flat)', { inputs: { input: { shape: [1, 784], data: new Array(784).fill(0) } } }],
    ['data length disagrees with shape', { inputs: { input: { shape: [1, 1, 28, 28], data: [1, 2, 3] } } }],
    ['wrong dtype', { inputs: { input: { shape: [1, 1, 28, 28], dtype: 'int8', data: new Array(784).fill(0) } } }],
    ['base64 of the wrong length', { inputs: { input: { shape: [1, 1, 28, 28], base64: Buffer.alloc(100).toString('base64') } } }],
    ['NaN in a base64 buffer', { inputs: { input: { shape: [1, 1, 1, 1].map((d, i) => (i < 2 ? 1 : 28)), base64: Buffer.from(new Float32Array(784).fill(Number.NaN).buffer).toString('base64') } } }],
    ['a string element', { inputs: { input: { shape: [1, 1, 28, 28], data: ['x', ...new Array(783).fill(0)] } } }],
    ['ragged nested array', { inputs: { input: [[[[1, 2], [3]]]] } }],
    ['unknown input name', { inputs: { image: [[1]] } }],
    ['missing input', { inputs: {} }],
    ['inputs not an object', { inputs: [1, 2, 3] }],
    ['body not an object', [1, 2, 3]],
    ['unknown top-level key', { inputs: {}, extra: 1 }],
    ['bad outputEncoding', { inputs: {}, outputEncoding: 'hex' }],
    ['deeply nested array', undefined, `{"inputs": {"input": ${'['.repeat(100_000)}${']'.repeat(100_000)}}}`],
  ];
  for (const [what, body, raw] of cases) {
    const res = await infer('digits-fp32', body, raw);
    t.equal(res.status, 400, `${what}: 400`);
    t.equal(res.body.error?.code, 'EDGE_INPUT_INVALID', `${what}: input error code`);
    if (!['bad outputEncoding'].includes(what)) t.match(JSON.stringify(res.body), expected, `${what}: says what was expected (${res.body.error?.message})`);
  }
  const notJson = await infer('digits-fp32', undefined, '{"inputs": ');
  t.equal(notJson.status, 400, 'invalid JSON: 400');
  t.match(notJson.body.error, { code: 'EDGE_INPUT_INVALID', message: /not valid JSON.*expected a JSON object/ }, `invalid JSON in the documented envelope: ${notJson.body.error?.message}`);
  const url = `${(await agentP).url}/v1/models/digits-fp32/infer`;
  // What `curl -d` sends when no content-type is given.
  const noType = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '{"inputs": {}}' });
  t.equal(noType.status, 415, 'a form content-type: 415');
  t.match(await noType.json(), { error: { code: 'EDGE_INPUT_INVALID', message: /content-type: application\/json/ } }, 'says which content-type');
  const badEscape = await fetch(`${(await agentP).url}/v1/models/%E0%A4%A/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.equal(badEscape.status, 400, 'a bad percent-escape: 400');
  t.match(await badEscape.json(), { error: { code: 'EDGE_BAD_REQUEST' } }, 'in the agent\'s envelope');
  const unknown = await infer('no-such-model', { inputs: {} });
  t.equal(unknown.status, 404, 'unknown model: 404');
  t.match(unknown.body.error.message, /digits-fp32/, '404 lists the models served');
  const big = await infer('digits-fp32', { inputs: { input: { shape: [100, 1, 28, 28], data: new Array(78400).fill(0.5) } } });
  t.equal(big.status, 413, 'body over health.bodyLimitBytes: 413');
  t.match(big.body.error, { code: 'EDGE_BODY_TOO_LARGE', message: /health.bodyLimitBytes/ });
  const ok = await infer('digits-fp32', { inputs: { input: { shape: [1, 1, 28, 28], data: Array.from(digitBatch(3, 1).data) } } });
  t.equal(ok.status, 200, 'still serving after every bad request');
  const health = await fetch(`${(await agentP).url}/healthz`);
  t.equal(health.status, 200);
});

t.test('GET /v1/models and /v1/status show versions, backends and the auto choice', async (t) => {
  const url = (await agentP).url;
  const list = await (await fetch(`${url}/v1/models`)).json() as { models: any[] };
  t.same(list.models.map((m) => [m.name, m.backend, m.version, m.ready]), [
    ['digits-fp32', 'ort', FP32_VERSION, true],
    ['digits-int8-ort', 'ort', INT8_VERSION, true],
    ['digits-int8-native', 'native', INT8_VERSION, true],
    ['digits-int8-auto', 'native', INT8_VERSION, true],
    ['digits-fp32-auto', 'ort', FP32_VERSION, true],
  ]);
  t.same(list.models[0].inputs, [{ name: 'input', dtype: 'float32', shape: ['N', 1, 28, 28] }]);
  const status = await (await fetch(`${url}/v1/status`)).json() as any;
  const m = status.models.models.find((x: any) => x.name === 'digits-int8-native');
  t.same(m.active.backendChoice, { requested: 'native', chosen: 'native', reason: 'configured' });
  const auto8 = status.models.models.find((x: any) => x.name === 'digits-int8-auto');
  t.match(auto8.active.backendChoice, { requested: 'auto', chosen: 'native', reason: /^auto: every operator is supported/ }, 'auto takes native for the int8 graph');
  const auto32 = status.models.models.find((x: any) => x.name === 'digits-fp32-auto');
  t.match(auto32.active.backendChoice, { requested: 'auto', chosen: 'ort', reason: /^auto: native engine declined \(.+\)/ }, 'auto falls back to ort for the fp32 graph, saying why');
  const ready = await fetch(`${url}/readyz`);
  t.equal(ready.status, 200, 'ready once every model is warm');
  const metrics = await (await fetch(`${url}/metrics`)).text();
  t.match(metrics, new RegExp(`edge_model_inference_seconds_count\\{[^}]*model="digits-fp32"[^}]*version="${FP32_VERSION}"[^}]*backend="ort"`), 'latency histogram per model, version, backend');
  t.match(metrics, /edge_model_errors_total\{[^}]*model="digits-fp32"[^}]*kind="bad_input"[^}]*\} \d+/, 'errors by kind');
  t.match(metrics, /edge_model_queue_depth\{[^}]*model="digits-fp32"/, 'queue depth');
});

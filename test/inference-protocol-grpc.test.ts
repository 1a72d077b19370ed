// The Open Inference Protocol over gRPC, called by a client nobody here wrote: Python's grpcio
// from Debian with stubs compiled from the repo's .proto at test time. It gets the same logits
// as /v1 from the shipped digit models (raw and typed contents, native and ONNX Runtime, an
// ensemble), and the protocol's status codes for bad calls while the agent keeps serving;
// then grpc-js for what Python cannot do simply: concurrent calls past admission, a client
// stalled mid-message past its deadline, a call without the token, TLS.
import t from 'tap';
import http2 from 'node:http2';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { copyPackage, digitBatch, FP32, FP32_VERSION, INT8, INT8_VERSION, startAgent } from './helpers/model-packages.js';
import { compilePythonStubs, grpc, grpcClient, rawBytes, runPythonClient } from './helpers/inference-protocol.js';
import { makePki } from './helpers/pki.js';
import { within } from './helpers/wait.js';

t.setTimeout(180_000);

const TOKEN = 'protocol-test-token-0123456789';
const running = await startAgent({
  models: [
    { name: 'digits-fp32', package: FP32, backend: 'ort' },
    { name: 'digits-int8', package: INT8, backend: 'native' },
  ],
  runtime: { threads: 1, queueLimit: 1, ensembles: [{ name: 'digits-ensemble', members: ['digits-fp32', 'digits-int8'] }] },
  health: { token: TOKEN },
  grpc: { port: 0, maxMessageBytes: 512 * 1024 },
});
t.teardown(() => running.stop());
const target = `127.0.0.1:${running.agent.grpc.port}`;
const auth = { authorization: `Bearer ${TOKEN}` };
const stubs = t.testdir({});
compilePythonStubs(stubs);

const batch = digitBatch(0, 8);
const raw = rawBytes(batch.data).toString('base64');
const input = (over: Record<string, unknown> = {}) => ({ name: 'input', datatype: 'FP32', shape: batch.shape, raw_b64: raw, ...over });

async function v1Logits(model: string): Promise<number[]> {
  const res = await fetch(`${running.url}/v1/models/${model}/infer`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ inputs: { input: { shape: batch.shape, data: Array.from(batch.data) } } }) });
  const body = await res.json() as any;
  if (res.status !== 200) throw new Error(`/v1 ${model}: ${res.status} ${JSON.stringify(body)}`);
  return body.outputs.logits?.data ?? body.outputs.scores.data;
}

t.test('Python grpcio: health, metadata, and the same logits as /v1', async (t) => {
  const [fp32, int8, ensemble] = await Promise.all([v1Logits('digits-fp32'), v1Logits('digits-int8'), v1Logits('digits-ensemble')]);
  const r = await runPythonClient({
    target, stubs, token: TOKEN, calls: [
      { op: 'live' },
      { op: 'ready' },
      { op: 'server_metadata' },
      { op: 'model_metadata', model: 'digits-fp32' },
      { op: 'model_metadata', model: 'digits-int8', version: INT8_VERSION },
      { op: 'model_ready', model: 'digits-int8' },
      { op: 'infer', model: 'digits-fp32', id: 'req-1', inputs: [input()] },
      { op: 'infer', model: 'digits-int8', inputs: [input()] },
      { op: 'infer', model: 'digits-fp32', version: FP32_VERSION, inputs: [{ name: 'input', datatype: 'FP32', shape: batch.shape, fp32: Array.from(batch.data) }], outputs: ['logits'] },
      { op: 'infer', model: 'digits-ensemble', inputs: [input()] },
    ],
  });
  const [live, ready, server, metaFp32, metaInt8, modelReady, inferFp32, inferInt8, typed, ens] = r as any[];
  t.same(live, { ok: true, live: true }, 'ServerLive: live');
  t.same(ready, { ok: true, ready: true }, 'ServerReady: ready');
  t.equal(server.name, 'edge-agent', 'ServerMetadata names the server');
  t.ok(server.extensions.includes('binary_tensor_data'), `ServerMetadata lists the extensions: ${server.extensions}`);
  t.same(metaFp32, { ok: true, name: 'digits-fp32', versions: [FP32_VERSION], platform: 'onnxruntime_onnx', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }], outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }] }, 'ModelMetadata in the protocol\'s datatypes, -1 for the batch');
  t.same(metaInt8.versions, [INT8_VERSION], 'ModelMetadata of a named version');
  t.equal(metaInt8.platform, 'edge_int8', 'the native engine\'s platform');
  t.same(modelReady, { ok: true, ready: true }, 'ModelReady');
  t.equal(inferFp32.ok, true, JSON.stringify(inferFp32).slice(0, 300));
  t.equal(inferFp32.id, 'req-1', 'the id is echoed');
  t.equal(inferFp32.model_version, FP32_VERSION, 'the response names the version that answered');
  t.equal(inferFp32.parameters.backend, 'ort', 'and its backend');
  t.same(inferFp32.outputs[0].shape, [8, 10], 'logits [8, 10]');
  t.equal(inferFp32.outputs[0].form, 'raw', 'raw in, raw out (raw_output_contents)');
  t.same(inferFp32.outputs[0].data, fp32, 'fp32 logits over gRPC raw are exactly those of /v1');
  t.equal(inferInt8.model_version, INT8_VERSION);
  t.equal(inferInt8.parameters.backend, 'native');
  t.same(inferInt8.outputs[0].data, int8, 'int8 (native engine) logits over gRPC raw are exactly those of /v1');
  t.equal(typed.outputs[0].form, 'typed', 'typed contents in, typed contents out');
  t.same(typed.outputs[0].data, fp32, 'typed fp32_contents give the same logits');
  t.equal(ens.ok, true, JSON.stringify(ens).slice(0, 300));
  t.equal(ens.model_version, `digits-fp32@${FP32_VERSION}+digits-int8@${INT8_VERSION}`, 'an ensemble\'s version names its members\'');
  t.equal(ens.parameters.members, `digits-fp32@${FP32_VERSION}:ort,digits-int8@${INT8_VERSION}:native`, 'and the parameters name each member\'s backend');
  t.same(ens.outputs[0].data.map((x: number) => Math.fround(x)), ensemble.map((x) => Math.fround(x)), 'ensemble scores are those of /v1');
});

t.test('Python grpcio: bad calls get the protocol\'s status codes, and the agent keeps serving', async (t) => {
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['wrong datatype', { op: 'infer', model: 'digits-fp32', inputs: [input({ datatype: 'INT8' })] }, 'INVALID_ARGUMENT', /expected datatype FP32.*got "INT8"/],
    ['wrong shape', { op: 'infer', model: 'digits-fp32', inputs: [input({ shape: [8, 1, 14, 56] })] }, 'INVALID_ARGUMENT', /expected float32 with shape \[N, 1, 28, 28\], got shape \[8, 1, 14, 56\]/],
    ['raw size off', { op: 'infer', model: 'digits-fp32', inputs: [input({ shape: [7, 1, 28, 28] })] }, 'INVALID_ARGUMENT', /needs 21952 bytes.*has 25088/],
    ['unknown model', { op: 'infer', model: 'nope', inputs: [input()] }, 'NOT_FOUND', /no model named "nope" \(serving: digits-fp32, digits-int8, digits-ensemble\)/],
    ['unknown version', { op: 'infer', model: 'digits-fp32', version: '9.9.9', inputs: [input()] }, 'NOT_FOUND', /no version "9.9.9" serving \(serving: /],
    ['unknown model metadata', { op: 'model_metadata', model: 'nope' }, 'NOT_FOUND', /no model named "nope"/],
    ['missing input', { op: 'infer', model: 'digits-fp32', inputs: [] }, 'INVALID_ARGUMENT', /non-empty list of tensors; the model takes "input" \(FP32, shape \[-1, 1, 28, 28\]\)/],
    ['unknown input', { op: 'infer', model: 'digits-fp32', inputs: [input({ name: 'image' })] }, 'INVALID_ARGUMENT', /unknown input "image"/],
    ['oversized message', { op: 'infer', model: 'digits-fp32', inputs: [{ name: 'input', datatype: 'FP32', shape: [1000, 1, 28, 28], raw_bytes: 1000 * 784 * 4 }] }, 'RESOURCE_EXHAUSTED', /larger than max \(\d+ vs 524288\)/],
    ['typed contents in the wrong field', { op: 'infer', model: 'digits-fp32', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], int: Array(784).fill(0) }] }, 'INVALID_ARGUMENT', /"FP32" values go in contents.fp32_contents, got int_contents/],
  ];
  const r = await runPythonClient({ target, stubs, token: TOKEN, calls: [...cases.map(([, call]) => call), { op: 'infer', model: 'digits-fp32', inputs: [input()] }] });
  cases.forEach(([what, , code, details], i) => {
    const got = r[i]!;
    t.equal(got.ok, false, `${what}: refused`);
    if (got.ok) return;
    t.equal(got.code, code, `${what}: ${code}`);
    t.match(got.details, details, `${what}: says what was expected (${got.details})`);
  });
  t.equal(r.at(-1)!.ok, true, 'a good call after all of them is answered');
});

t.test('grpc-js: a call without the token is UNAUTHENTICATED', async (t) => {
  const c = grpcClient(target);
  t.teardown(() => c.close());
  await t.rejects(c.call('ServerLive', {}), { code: grpc.status.UNAUTHENTICATED, details: /authorization: Bearer/ }, 'no token');
  const bad = new grpc.Metadata();
  bad.set('authorization', 'Bearer wrong-token-wrong-token-xx');
  await t.rejects(c.call('ServerLive', {}, { metadata: bad }), { code: grpc.status.UNAUTHENTICATED }, 'wrong token');
});

const metadata = (): grpc.Metadata => {
  const m = new grpc.Metadata();
  m.set('authorization', auth.authorization);
  return m;
};

t.test('grpc-js: calls past admission get RESOURCE_EXHAUSTED, the admitted ones answers', async (t) => {
  const c = grpcClient(target);
  t.teardown(() => c.close());
  const big = digitBatch(0, 128); // 401 KB, under grpc.maxMessageBytes
  const req = { model_name: 'digits-fp32', inputs: [{ name: 'input', datatype: 'FP32', shape: big.shape }], raw_input_contents: [rawBytes(big.data)] };
  // runtime.queueLimit 1: of 24 calls sent at once, at most 2 are in flight at a time.
  const settled = await Promise.allSettled(Array.from({ length: 24 }, () => c.call('ModelInfer', req, { metadata: metadata() })));
  const ok = settled.filter((s) => s.status === 'fulfilled').length;
  const refused = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
  t.ok(ok >= 1, `${ok} answered`);
  t.ok(refused.length >= 1, `${refused.length} refused`);
  for (const r of refused) {
    t.equal(r.reason.code, grpc.status.RESOURCE_EXHAUSTED, `refused with RESOURCE_EXHAUSTED: ${r.reason.details}`);
    t.match(r.reason.details, /requests in flight \(runtime.queueLimit\)/, 'naming the limit');
  }
});

t.test('a client stalled mid-message past its deadline gets DEADLINE_EXCEEDED; the agent keeps serving', async (t) => {
  const session = http2.connect(`http://${target}`);
  session.on('error', () => {}); // the server may reset the session after answering
  t.teardown(() => session.close());
  const stream = session.request({
    ':method': 'POST', ':path': '/inference.GRPCInferenceService/ModelInfer', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '300m', authorization: auth.authorization,
  });
  const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => {
    stream.on('trailers', resolve);
    stream.on('response', (h) => { if (h['grpc-status'] !== undefined) resolve(h); }); // trailers-only answer
  });
  stream.on('error', () => {});
  // A gRPC frame announcing 1000 bytes, of which 10 are sent; then nothing.
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(1000, 1);
  stream.write(Buffer.concat([prefix, Buffer.alloc(10)]));
  const started = Date.now();
  const h = await within(trailers, 10_000, 'the stalled call\'s status');
  t.equal(Number(h['grpc-status']), grpc.status.DEADLINE_EXCEEDED, `DEADLINE_EXCEEDED (${h['grpc-message']})`);
  t.ok(Date.now() - started < 5000, `answered ${Date.now() - started} ms after the stall, near its 300 ms deadline`);
  const c = grpcClient(target);
  t.teardown(() => c.close());
  const res = await c.call('ModelInfer', { model_name: 'digits-int8', inputs: [{ name: 'input', datatype: 'FP32', shape: batch.shape }], raw_input_contents: [rawBytes(batch.data)] }, { metadata: metadata() });
  t.same(res.outputs[0].shape, [8, 10], 'the next call is answered');
});

t.test('a call whose deadline passes while it waits its turn is not run', async (t) => {
  const c = grpcClient(target);
  t.teardown(() => c.close());
  const big = digitBatch(0, 128);
  const req = { model_name: 'digits-fp32', inputs: [{ name: 'input', datatype: 'FP32', shape: big.shape }], raw_input_contents: [rawBytes(big.data)] };
  let runs = 0;
  let serviceMs = 0;
  running.agent.models.onInference((e) => {
    if (e.model !== 'digits-fp32' || e.inputs.input?.shape[0] !== 128) return;
    runs++;
    serviceMs = e.latencyMs;
  });
  // One call first: the channel connects, and the service time of this request is measured.
  await c.call('ModelInfer', req, { metadata: metadata() });
  runs = 0;
  const deadlineMs = Math.max(3, Math.round(serviceMs / 4));
  // One call runs; the next waits its turn (runtime.queueLimit 1 admits it) with a deadline
  // of a quarter of the first one's service time.
  const ahead = c.call('ModelInfer', req, { metadata: metadata() });
  const late = c.call('ModelInfer', req, { metadata: metadata(), deadlineMs });
  const [first, last] = await Promise.allSettled([ahead, late]);
  t.equal(first!.status, 'fulfilled', 'the call ahead is answered');
  t.equal(last!.status, 'rejected', 'the late call is not answered with logits');
  if (last!.status === 'rejected') t.equal(last!.reason.code, grpc.status.DEADLINE_EXCEEDED, `DEADLINE_EXCEEDED (${last!.reason.details})`);
  t.equal(runs, 1, `${runs} inference ran for the 2 calls (service ${serviceMs.toFixed(1)} ms, deadline ${deadlineMs} ms): the late one was not run`);
});

t.test('per-protocol request counts and latencies are in /metrics', async (t) => {
  const text = await (await fetch(`${running.url}/metrics`, { headers: auth })).text();
  const count = (labels: string) => Number(new RegExp(`^edge_inference_requests_total\\{${labels}[^}]*\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  t.ok(count('protocol="grpc",model="digits-fp32",outcome="success"') >= 3, 'gRPC successes of digits-fp32 counted');
  t.ok(count('protocol="grpc",model="digits-fp32",outcome="bad_request"') >= 3, 'gRPC bad requests counted');
  t.ok(count('protocol="grpc",model="\\(unknown\\)",outcome="not_found"') >= 1, 'an unknown model is counted without its name as a label');
  t.ok(count('protocol="grpc",model="digits-fp32",outcome="overloaded"') >= 1, 'admission refusals counted');
  t.ok(count('protocol="v1",model="digits-fp32",outcome="success"') >= 1, '/v1 counted beside it');
  t.match(text, /edge_inference_request_seconds_bucket\{[^}]*protocol="grpc",model="digits-int8"/, 'latency histogram per protocol');
});

t.test('TLS with the configured certificate', async (t) => {
  // A server certificate of the fleet CA (scripts/make-ca.sh: serverAuth, localhost and 127.0.0.1).
  const pki = makePki([]);
  t.teardown(() => pki.remove());
  const tls = await startAgent({ models: [{ name: 'digits', package: FP32 }], grpc: { port: 0, cert: pki.file('broker.crt'), key: pki.file('broker.key') } });
  t.teardown(() => tls.stop());
  const port = tls.agent.grpc.port!;
  const secure = grpcClient(`localhost:${port}`, grpc.credentials.createSsl(pki.read('ca.crt')));
  t.teardown(() => secure.close());
  const res = await secure.call('ModelInfer', { model_name: 'digits', inputs: [{ name: 'input', datatype: 'FP32', shape: batch.shape }], raw_input_contents: [rawBytes(batch.data)] });
  t.same(res.outputs[0].shape, [8, 10], 'answered over TLS');
  const plain = grpcClient(`127.0.0.1:${port}`);
  t.teardown(() => plain.close());
  await t.rejects(plain.call('ServerLive', {}, { deadlineMs: 3000 }), { code: grpc.status.UNAVAILABLE }, 'a plaintext client is not served');
});

t.test('a model whose package was refused: UNAVAILABLE over gRPC, 503 and not-ready over REST', async (t) => {
  const broken = copyPackage(FP32, t.testdir({}));
  writeFileSync(path.join(broken, 'model.onnx'), 'not a model'); // its sha256 no longer matches the manifest
  const a = await startAgent({ models: [{ name: 'digits', package: FP32 }, { name: 'broken', package: broken }], grpc: { port: 0 } });
  t.teardown(() => a.stop());
  const c = grpcClient(`127.0.0.1:${a.agent.grpc.port}`);
  t.teardown(() => c.close());
  t.same(await c.call('ServerReady', {}), { ready: false }, 'ServerReady: false while a configured model is not loaded');
  t.same(await c.call('ModelReady', { name: 'broken' }), { ready: false }, 'ModelReady: false');
  t.same(await c.call('ModelReady', { name: 'digits' }), { ready: true }, 'the other model is ready');
  await t.rejects(c.call('ModelInfer', { model_name: 'broken', inputs: [{ name: 'input', datatype: 'FP32', shape: batch.shape }], raw_input_contents: [rawBytes(batch.data)] }), { code: grpc.status.UNAVAILABLE, details: /model broken is not loaded: .*refused/ }, 'ModelInfer: UNAVAILABLE, saying why');
  const res = await c.call('ModelInfer', { model_name: 'digits', inputs: [{ name: 'input', datatype: 'FP32', shape: batch.shape }], raw_input_contents: [rawBytes(batch.data)] });
  t.same(res.outputs[0].shape, [8, 10], 'the loaded model serves');
  const ready = await fetch(`${a.url}/v2/health/ready`);
  t.equal(ready.status, 400, 'REST server ready: 400 (the protocol\'s "not ready")');
  t.match(await ready.json(), { ready: false, error: /model broken failed to load/ }, 'saying why');
  t.equal((await fetch(`${a.url}/v2/models/broken/ready`)).status, 400, 'REST model ready: 400');
  const infer = await fetch(`${a.url}/v2/models/broken/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: Array(784).fill(0) }] }) });
  t.equal(infer.status, 503, 'REST infer: 503');
  t.match(await infer.json(), { error: /model broken is not loaded/ }, 'in the protocol\'s error form');
});

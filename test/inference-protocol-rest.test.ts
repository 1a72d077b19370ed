// The Open Inference Protocol over REST (/v2), called with the real curl binary: JSON (flat and
// nested data) and Triton's binary tensor data extension give the same logits as /v1; the
// metadata, readiness and versions of models, ensembles and A/B candidates; bad requests get
// {"error": "..."} with the protocol's status while the agent keeps serving.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { digitBatch, FP32, FP32_VERSION, INT8, INT8_VERSION, startAgent } from './helpers/model-packages.js';
import { rawBytes } from './helpers/inference-protocol.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const run = promisify(execFile);

const running = await startAgent({
  models: [
    { name: 'digits', package: FP32, backend: 'ort' },
    { name: 'digits-int8', package: INT8, backend: 'native' },
  ],
  runtime: { threads: 1, queueLimit: 1, ensembles: [{ name: 'digits-ensemble', members: ['digits', 'digits-int8'] }] },
  health: { bodyLimitBytes: 256 * 1024, requestTimeoutMs: 1000 },
});
t.teardown(() => running.stop());
const dir = t.testdir({});

interface CurlAnswer { status: number; headers: Record<string, string>; body: Buffer; json: any }

/** One request with curl (asynchronously: the agent answers from this process's event loop). */
async function curl(method: string, route: string, opts: { body?: Buffer | string; headers?: Record<string, string> } = {}): Promise<CurlAnswer> {
  const id = Math.random().toString(36).slice(2);
  const out = path.join(dir, `${id}.out`);
  const hdr = path.join(dir, `${id}.hdr`);
  const args = ['-sS', '-X', method, '-o', out, '-D', hdr, '-w', '%{http_code}'];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (opts.body !== undefined) {
    const file = path.join(dir, `${id}.in`);
    writeFileSync(file, opts.body);
    args.push('--data-binary', `@${file}`);
  }
  args.push(`${running.url}${route}`);
  const { stdout } = await run('curl', args);
  const headers = Object.fromEntries(readFileSync(hdr, 'utf8').split('\r\n').slice(1).filter(Boolean).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  const body = readFileSync(out);
  let json: any;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: Number(stdout), headers, body, json };
}

const JSON_CT = { 'content-type': 'application/json' };
const batch = digitBatch(0, 8);
const flat = Array.from(batch.data);
const v2Input = (over: Record<string, unknown> = {}) => ({ name: 'input', shape: batch.shape, datatype: 'FP32', data: flat, ...over });

async function v1Logits(model: string): Promise<number[]> {
  const r = await curl('POST', `/v1/models/${model}/infer`, { headers: JSON_CT, body: JSON.stringify({ inputs: { input: { shape: batch.shape, data: flat } } }) });
  if (r.status !== 200) throw new Error(`/v1: ${r.status} ${r.body}`);
  return r.json.outputs.logits.data;
}

t.test('health, server metadata and model metadata', async (t) => {
  t.same((await curl('GET', '/v2/health/live')).json, { live: true }, 'live');
  const ready = await curl('GET', '/v2/health/ready');
  t.equal(ready.status, 200, 'ready: 200');
  const server = await curl('GET', '/v2');
  t.equal(server.json.name, 'edge-agent');
  t.same(server.json.extensions, ['binary_tensor_data', 'parameters'], 'the extensions served');
  const meta = await curl('GET', '/v2/models/digits');
  t.same(meta.json, { name: 'digits', versions: [FP32_VERSION], platform: 'onnxruntime_onnx', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }], outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }] }, 'model metadata');
  t.equal((await curl('GET', `/v2/models/digits-int8/versions/${INT8_VERSION}`)).json.platform, 'edge_int8', 'metadata of a version');
  const ens = await curl('GET', '/v2/models/digits-ensemble');
  t.same(ens.json.versions, [`digits@${FP32_VERSION}+digits-int8@${INT8_VERSION}`], 'an ensemble\'s version names its members\'');
  t.same(ens.json.outputs, [{ name: 'scores', datatype: 'FP32', shape: [-1, 10] }], 'and its fused output');
  t.same((await curl('GET', '/v2/models/digits/ready')).json, { name: 'digits', ready: true }, 'model ready');
  t.equal((await curl('GET', `/v2/models/digits/versions/${FP32_VERSION}/ready`)).status, 200, 'version ready');
});

t.test('JSON (flat and nested data) and binary tensors give /v1\'s logits', async (t) => {
  const [fp32, int8] = [await v1Logits('digits'), await v1Logits('digits-int8')];
  const plain = await curl('POST', '/v2/models/digits/infer', { headers: JSON_CT, body: JSON.stringify({ id: 'curl-1', inputs: [v2Input()] }) });
  t.equal(plain.status, 200, plain.body.toString().slice(0, 200));
  t.same(plain.json.outputs, [{ name: 'logits', datatype: 'FP32', shape: [8, 10], data: fp32 }], 'flat data: the logits of /v1');
  t.equal(plain.json.id, 'curl-1', 'id echoed');
  t.equal(plain.json.model_version, FP32_VERSION, 'the version that answered');
  t.same(plain.json.parameters, { backend: 'ort' }, 'and its backend');

  const nested: number[][][][] = [];
  for (let i = 0; i < 8; i++) nested.push([Array.from({ length: 28 }, (_, r) => flat.slice(i * 784 + r * 28, i * 784 + r * 28 + 28))]);
  const n = await curl('POST', '/v2/models/digits-int8/infer', { headers: JSON_CT, body: JSON.stringify({ inputs: [v2Input({ data: nested })], outputs: [{ name: 'logits' }] }) });
  t.same(n.json.outputs[0].data, int8, 'nested data on the native engine: the logits of /v1');

  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: batch.shape, datatype: 'FP32', parameters: { binary_data_size: batch.data.byteLength } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }));
  const bin = await curl('POST', '/v2/models/digits/infer', { headers: { 'content-type': 'application/octet-stream', 'Inference-Header-Content-Length': String(header.length) }, body: Buffer.concat([header, rawBytes(batch.data)]) });
  t.equal(bin.status, 200, bin.body.toString().slice(0, 200));
  const len = Number(bin.headers['inference-header-content-length']);
  t.ok(len > 0 && len < bin.body.length, `the answer's JSON header is ${len} bytes`);
  const head = JSON.parse(bin.body.subarray(0, len).toString());
  t.same(head.outputs, [{ name: 'logits', datatype: 'FP32', shape: [8, 10], parameters: { binary_data_size: 320 } }], 'the output is announced as binary');
  const tail = bin.body.subarray(len);
  t.same(Array.from(new Float32Array(tail.buffer.slice(tail.byteOffset, tail.byteOffset + tail.length))), fp32, 'binary in, binary out: the logits of /v1');

  const header2 = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: batch.shape, datatype: 'FP32', parameters: { binary_data_size: batch.data.byteLength } }] }));
  const jsonOut = await curl('POST', '/v2/models/digits/infer', { headers: { 'Inference-Header-Content-Length': String(header2.length) }, body: Buffer.concat([header2, rawBytes(batch.data)]) });
  t.equal(jsonOut.status, 200, 'binary in without binary_data on outputs');
  t.same(jsonOut.json.outputs[0].data, fp32, 'binary in, JSON out');
});

t.test('A/B: both versions listed, a pinned version answers, the response names the one that did', async (t) => {
  await running.agent.models.startAB('digits', INT8, 0.5, 'native');
  t.teardown(() => running.agent.models.stopAB('digits'));
  t.same((await curl('GET', '/v2/models/digits')).json.versions, [FP32_VERSION, INT8_VERSION], 'the candidate is a version of the model');
  t.same((await curl('GET', `/v2/models/digits/versions/${INT8_VERSION}/ready`)).json, { name: 'digits', ready: true }, 'and ready');
  const int8 = await v1Logits('digits-int8');
  const pinned = await curl('POST', `/v2/models/digits/versions/${INT8_VERSION}/infer`, { headers: JSON_CT, body: JSON.stringify({ inputs: [v2Input()] }) });
  t.equal(pinned.json.model_version, INT8_VERSION, 'the pinned version answers');
  t.same(pinned.json.outputs[0].data, int8, 'with its own logits');
  const seen = new Set<string>();
  for (let i = 0; i < 40 && seen.size < 2; i++) {
    seen.add((await curl('POST', '/v2/models/digits/infer', { headers: JSON_CT, body: JSON.stringify({ inputs: [v2Input({ shape: [1, 1, 28, 28], data: flat.slice(0, 784) })] }) })).json.model_version);
  }
  t.same([...seen].sort(), [FP32_VERSION, INT8_VERSION].sort(), 'unpinned requests are answered by both arms, each naming its version');
});

t.test('bad requests get {"error": ...} with the protocol\'s status, and the agent keeps serving', async (t) => {
  const post = (route: string, body: unknown, headers: Record<string, string> = JSON_CT) => curl('POST', route, { headers, body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) });
  const PAST_END = '{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","parameters":{"binary_data_size":3136}}]}';
  const cases: [string, () => Promise<CurlAnswer>, number, RegExp][] = [
    ['wrong datatype', () => post('/v2/models/digits/infer', { inputs: [v2Input({ datatype: 'FP64' })] }), 400, /expected datatype FP32 \(shape \[-1, 1, 28, 28\]\), got "FP64"/],
    ['unknown datatype', () => post('/v2/models/digits/infer', { inputs: [v2Input({ datatype: 'FLOAT' })] }), 400, /got "FLOAT" \(the protocol's datatypes: BOOL, UINT8/],
    ['wrong shape', () => post('/v2/models/digits/infer', { inputs: [v2Input({ shape: [8, 784] })] }), 400, /expected float32 with shape \[N, 1, 28, 28\], got shape \[8, 784\]/],
    ['data count off', () => post('/v2/models/digits/infer', { inputs: [v2Input({ shape: [7, 1, 28, 28] })] }), 400, /shape \[7, 1, 28, 28\] holds 5488 values, "data" has 6272/],
    ['unknown model', () => post('/v2/models/nope/infer', { inputs: [v2Input()] }), 404, /no model named "nope" \(serving: digits, digits-int8, digits-ensemble\)/],
    ['unknown version', () => post('/v2/models/digits/versions/0.0.1/infer', { inputs: [v2Input()] }), 404, /no version "0.0.1" serving \(serving: 1.0.0\)/],
    ['unknown version metadata', () => curl('GET', '/v2/models/digits/versions/0.0.1'), 404, /no version "0.0.1"/],
    ['missing input', () => post('/v2/models/digits/infer', { inputs: [] }), 400, /"inputs" must be a non-empty list of tensors; the model takes "input" \(FP32/],
    ['no inputs key', () => post('/v2/models/digits/infer', { input: [] }), 400, /unknown key "input"; send \{"inputs": \[/],
    ['unknown output', () => post('/v2/models/digits/infer', { inputs: [v2Input()], outputs: [{ name: 'probs' }] }), 400, /unknown output "probs"; the model gives "logits"/],
    ['oversized', () => post('/v2/models/digits/infer', { inputs: [v2Input({ shape: [128, 1, 28, 28], data: Array(128 * 784).fill(0.5) })] }), 413, /larger than the limit of 262144 bytes \(health.bodyLimitBytes\)/],
    ['not JSON', () => post('/v2/models/digits/infer', '{"inputs": [', JSON_CT), 400, /not valid JSON/],
    ['binary size past the end', () => post('/v2/models/digits/infer', `${PAST_END}xyz`, { 'Inference-Header-Content-Length': String(PAST_END.length) }), 400, /goes past the end of the binary data \(3 bytes left/],
    ['header length past the body', () => post('/v2/models/digits/infer', '{}', { 'Inference-Header-Content-Length': '99' }), 400, /Inference-Header-Content-Length must be the byte length of the JSON header \(0\.\.2/],
    ['unknown route', () => curl('GET', '/v2/repository/index'), 404, /no route GET \/v2\/repository\/index/],
  ];
  for (const [what, send, status, message] of cases) {
    const r = await send();
    t.equal(r.status, status, `${what}: ${status} (${r.body.toString().slice(0, 200)})`);
    t.same(Object.keys(r.json ?? {}), ['error'], `${what}: the protocol's error form`);
    t.match(r.json?.error, message, `${what}: ${r.json?.error}`);
  }
  t.equal((await post('/v2/models/digits/infer', { inputs: [v2Input()] })).status, 200, 'then a good request is answered');
});

t.test('requests past admission get 429 before their body is read, in the protocol\'s error form', async (t) => {
  const big = digitBatch(0, 64);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: big.shape, datatype: 'FP32', parameters: { binary_data_size: big.data.byteLength } }] }));
  const body = Buffer.concat([header, rawBytes(big.data)]);
  // runtime.queueLimit 1: of 16 requests sent at once, at most 2 are in flight at a time.
  const answers = await Promise.all(Array.from({ length: 16 }, async () => {
    const r = await fetch(`${running.url}/v2/models/digits/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(header.length) }, body });
    return { status: r.status, retryAfter: r.headers.get('retry-after'), body: await r.text() };
  }));
  const refused = answers.filter((a) => a.status === 429);
  t.ok(answers.some((a) => a.status === 200), `${answers.filter((a) => a.status === 200).length} answered`);
  t.ok(refused.length >= 1, `${refused.length} refused`);
  for (const r of refused) {
    t.match(JSON.parse(r.body), { error: /requests in flight \(runtime.queueLimit\)/ }, 'naming the limit');
    t.ok(Number(r.retryAfter) >= 1, 'with Retry-After');
  }
});

t.test('a client that stalls mid-body is cut off (health.requestTimeoutMs), and the agent keeps serving', async (t) => {
  const { port } = new URL(running.url);
  const s = net.connect(Number(port), '127.0.0.1');
  let closed = false;
  let answer = '';
  s.on('close', () => { closed = true; });
  s.on('error', () => undefined);
  s.on('data', (d) => { answer += d; });
  t.teardown(() => s.destroy());
  await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  s.write('POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"inputs": [');
  await waitFor(() => closed, { timeoutMs: 15_000, what: 'the server cutting a stalled request (health.requestTimeoutMs 1000)' });
  t.notMatch(answer, /^HTTP\/1\.1 200/, `no answer but a cut${answer ? ` (${answer.split('\r\n')[0]})` : ''}`);
  t.equal((await curl('POST', '/v2/models/digits/infer', { headers: JSON_CT, body: JSON.stringify({ inputs: [v2Input()] }) })).status, 200, 'and serves the next request');
});

t.test('per-protocol counts in /metrics', async (t) => {
  const text = (await curl('GET', '/metrics')).body.toString();
  t.match(text, /edge_inference_requests_total\{[^}]*protocol="v2_http",model="digits",outcome="success"[^}]*\} \d+/, '/v2 successes');
  t.match(text, /edge_inference_requests_total\{[^}]*protocol="v2_http",model="digits",outcome="bad_request"[^}]*\} \d+/, '/v2 bad requests');
  t.match(text, /edge_inference_requests_total\{[^}]*protocol="v1",model="digits",outcome="success"[^}]*\} \d+/, '/v1 beside it');
});

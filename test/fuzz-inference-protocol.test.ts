// Fuzzing the Open Inference Protocol's request paths on a real agent serving the digits model:
// /v2 infer bodies (random JSON, hostile tensors, mutated valid JSON and binary-extension
// bodies with odd header lengths) through fastify's full pipeline (inject), and ModelInfer
// request bytes (mutated valid messages, random bytes, hostile but well-formed messages) over
// a real gRPC connection. Every answer is a success or the protocol's error with a sentence;
// never a 5xx / INTERNAL, a hang or an unhandled rejection; the agent keeps serving.
import t from 'tap';
import fc from 'fast-check';
import * as protoLoader from '@grpc/proto-loader';
import { FP32, digitBatch, startAgent } from './helpers/model-packages.js';
import { RUNS, mutated, mutatedText, watchUnhandled } from './helpers/fuzz.js';
import { grpc, grpcClient, rawBytes } from './helpers/inference-protocol.js';
import { LOADER_OPTIONS, PROTO_FILE } from '../agent/inference-protocol/grpc-server.js';

t.setTimeout(300_000);
const unhandled = watchUnhandled();
const running = await startAgent({ models: [{ name: 'digits', package: FP32 }], health: { bodyLimitBytes: 256 * 1024 }, grpc: { port: 0, maxMessageBytes: 256 * 1024 } });
t.teardown(() => running.stop());
const app = running.agent.http;
const N = Math.max(500, Math.floor(RUNS / 2));

interface Answer { status: number; body: Buffer; headerLength?: string }
async function post(body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }, model = 'digits'): Promise<Answer> {
  const r = await app.inject({ method: 'POST', url: `/v2/models/${encodeURIComponent(model)}/infer`, headers, payload: body });
  return { status: r.statusCode, body: r.rawPayload, headerLength: r.headers['inference-header-content-length'] as string | undefined };
}

function checkAnswer(a: Answer): void {
  if (a.status >= 500) throw new Error(`server error ${a.status}: ${a.body.toString().slice(0, 300)}`);
  const json = a.headerLength !== undefined ? a.body.subarray(0, Number(a.headerLength)) : a.body;
  let parsed: any;
  try { parsed = JSON.parse(json.toString('utf8')); } catch { throw new Error(`non-JSON answer ${a.status}: ${a.body.toString().slice(0, 200)}`); }
  if (a.status >= 400) {
    if (Object.keys(parsed ?? {}).join() !== 'error' || typeof parsed.error !== 'string' || parsed.error.length < 12) throw new Error(`not the protocol's error ${a.status}: ${json.toString().slice(0, 300)}`);
  } else if (!Array.isArray(parsed?.outputs) || parsed.model_name !== 'digits') {
    throw new Error(`2xx without outputs: ${json.toString().slice(0, 200)}`);
  }
}

const one = digitBatch(0, 1);
const values = Array.from(one.data, (x) => Math.round(x * 100) / 100);
const valid = JSON.stringify({ id: 'f', inputs: [{ name: 'input', shape: one.shape, datatype: 'FP32', data: values }], outputs: [{ name: 'logits' }] });
const binHeader = JSON.stringify({ inputs: [{ name: 'input', shape: one.shape, datatype: 'FP32', parameters: { binary_data_size: 3136 } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] });
const binBody = Buffer.concat([Buffer.from(binHeader), rawBytes(one.data)]);

const dim = fc.oneof(fc.integer({ min: -2, max: 30 }), fc.constantFrom(0, 28, 2 ** 31, 2 ** 53, 1e300, 1.5, -0), fc.constant('N'));
const datatype = fc.oneof(fc.constantFrom('FP32', 'INT8', 'UINT8', 'INT64', 'FP16', 'BYTES', 'fp32', ''), fc.string({ maxLength: 6 }), fc.constant(null));
const tensor = fc.record({
  name: fc.oneof(fc.constant('input'), fc.string({ maxLength: 6 }), fc.constant(7)),
  shape: fc.oneof(fc.array(dim, { maxLength: 6 }), fc.jsonValue({ maxDepth: 1 })),
  datatype,
  data: fc.oneof(fc.array(fc.oneof(fc.double(), fc.integer(), fc.string({ maxLength: 3 }), fc.constant(null)), { maxLength: 900 }), fc.array(fc.array(fc.double(), { maxLength: 30 }), { maxLength: 30 }), fc.jsonValue({ maxDepth: 2 })),
  parameters: fc.oneof(fc.record({ binary_data_size: fc.oneof(fc.nat(5000), fc.constant(3136), fc.double(), fc.constant(-1)) }), fc.jsonValue({ maxDepth: 1 })),
}, { requiredKeys: [] });
const request = fc.record({
  id: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()),
  inputs: fc.oneof(fc.array(tensor, { maxLength: 3 }), fc.jsonValue({ maxDepth: 2 })),
  outputs: fc.oneof(fc.array(fc.record({ name: fc.oneof(fc.constant('logits'), fc.string({ maxLength: 5 })), parameters: fc.oneof(fc.record({ binary_data: fc.oneof(fc.boolean(), fc.integer()) }), fc.jsonValue({ maxDepth: 1 })) }, { requiredKeys: [] }), { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 })),
  parameters: fc.oneof(fc.record({ binary_data_output: fc.oneof(fc.boolean(), fc.string({ maxLength: 3 })) }), fc.jsonValue({ maxDepth: 1 })),
}, { requiredKeys: [] });

t.test('the valid requests are answered (the harness is sound)', async (t) => {
  const a = await post(valid);
  t.equal(a.status, 200, a.body.toString().slice(0, 200));
  checkAnswer(a);
  const b = await post(binBody, { 'inference-header-content-length': String(Buffer.byteLength(binHeader)) });
  t.equal(b.status, 200, 'the binary request is answered');
  checkAnswer(b);
});

t.test('REST: random JSON bodies', async (t) => {
  await fc.assert(fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (v) => checkAnswer(await post(JSON.stringify(v) ?? 'null'))), { numRuns: N });
  t.pass(`${N} bodies`);
});

t.test('REST: hostile requests (shapes, datatypes, data, binary sizes, outputs, parameters)', async (t) => {
  await fc.assert(fc.asyncProperty(request, fc.uint8Array({ maxLength: 4000 }), fc.boolean(), async (r, tail, binary) => {
    const json = JSON.stringify(r);
    checkAnswer(binary ? await post(Buffer.concat([Buffer.from(json), tail]), { 'inference-header-content-length': String(Buffer.byteLength(json)) }) : await post(json));
  }), { numRuns: N * 2 });
  t.pass(`${2 * N} requests`);
});

t.test('REST: mutated valid JSON bodies', async (t) => {
  await fc.assert(fc.asyncProperty(mutatedText(fc.constant(valid)), async (s) => checkAnswer(await post(s))), { numRuns: N * 2 });
  t.pass(`${2 * N} bodies`);
});

t.test('REST: mutated binary bodies with odd header lengths and content types', async (t) => {
  const headerLength = fc.oneof(fc.constant(String(Buffer.byteLength(binHeader))), fc.nat(4000).map(String), fc.constantFrom('-1', '1e3', '', 'abc', '99999999999999999999'));
  await fc.assert(fc.asyncProperty(mutated(fc.constant(new Uint8Array(binBody))), headerLength, fc.constantFrom('application/octet-stream', 'application/json', 'text/plain', ''), async (b, len, ct) => {
    checkAnswer(await post(Buffer.from(b), { 'inference-header-content-length': len, ...(ct ? { 'content-type': ct } : {}) }));
  }), { numRuns: N });
  t.pass(`${N} bodies`);
});

// gRPC: the request bytes themselves.
const definition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
const method = definition['inference.GRPCInferenceService'] as unknown as Record<string, protoLoader.MethodDefinition<any, any>>;
const encode = (req: unknown): Buffer => method.ModelInfer!.requestSerialize(req);
const validRequest = { model_name: 'digits', id: 'g', inputs: [{ name: 'input', datatype: 'FP32', shape: one.shape }], raw_input_contents: [rawBytes(one.data)] };
const c = grpcClient(`127.0.0.1:${running.agent.grpc.port}`);
t.teardown(() => c.close());
const ALLOWED = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.RESOURCE_EXHAUSTED]);

function callRaw(bytes: Buffer): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    c.client.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (b: Buffer) => b, (b: Buffer) => b, bytes, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err) => {
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' });
    });
  });
}

function checkStatus(s: { code: number; details: string }): void {
  if (!ALLOWED.has(s.code)) throw new Error(`status ${grpc.status[s.code]}: ${s.details}`);
  if (s.code !== grpc.status.OK && s.details.length < 12) throw new Error(`unclear ${grpc.status[s.code]}: ${JSON.stringify(s.details)}`);
}

t.test('gRPC: the valid request is answered (the harness is sound)', async (t) => {
  const s = await callRaw(encode(validRequest));
  t.equal(s.code, grpc.status.OK, s.details);
});

t.test('gRPC: mutated valid ModelInferRequest bytes', async (t) => {
  await fc.assert(fc.asyncProperty(mutated(fc.constant(new Uint8Array(encode(validRequest)))), async (b) => checkStatus(await callRaw(Buffer.from(b)))), { numRuns: N * 2 });
  t.pass(`${2 * N} messages`);
});

t.test('gRPC: random bytes', async (t) => {
  await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), async (b) => checkStatus(await callRaw(Buffer.from(b)))), { numRuns: N });
  t.pass(`${N} messages`);
});

t.test('gRPC: hostile well-formed messages (shapes, datatypes, contents, raw sizes)', async (t) => {
  const i64 = fc.oneof(fc.integer({ min: -2, max: 30 }), fc.constantFrom(28, 2 ** 31, 2 ** 53 - 1, -(2 ** 40)));
  const input = fc.record({
    name: fc.oneof(fc.constant('input'), fc.string({ maxLength: 5 })),
    datatype: fc.oneof(fc.constantFrom('FP32', 'INT8', 'UINT8', 'INT64', 'BOOL', 'BYTES', 'FP16'), fc.string({ maxLength: 4 })),
    shape: fc.array(i64, { maxLength: 6 }),
    contents: fc.oneof(fc.constant(undefined), fc.record({ fp32_contents: fc.array(fc.float(), { maxLength: 800 }) }), fc.record({ int_contents: fc.array(fc.integer(), { maxLength: 100 }) }), fc.record({ bool_contents: fc.array(fc.boolean(), { maxLength: 10 }), bytes_contents: fc.array(fc.uint8Array({ maxLength: 4 }).map((u) => Buffer.from(u)), { maxLength: 3 }) })),
  }, { requiredKeys: ['name', 'datatype', 'shape'] });
  const msg = fc.record({
    model_name: fc.oneof(fc.constant('digits'), fc.string({ maxLength: 8 })),
    model_version: fc.oneof(fc.constant(''), fc.constant('1.0.0'), fc.string({ maxLength: 5 })),
    inputs: fc.array(input, { maxLength: 3 }),
    outputs: fc.array(fc.record({ name: fc.oneof(fc.constant('logits'), fc.string({ maxLength: 4 })) }), { maxLength: 2 }),
    raw_input_contents: fc.array(fc.oneof(fc.constant(rawBytes(one.data)), fc.uint8Array({ maxLength: 4000 }).map((u) => Buffer.from(u))), { maxLength: 3 }),
  });
  await fc.assert(fc.asyncProperty(msg, async (m) => checkStatus(await callRaw(encode(m)))), { numRuns: N * 2 });
  t.pass(`${2 * N} messages`);
});

t.test('the agent keeps serving both, with no unhandled rejections', async (t) => {
  t.equal((await post(valid)).status, 200, 'REST infers');
  t.equal((await callRaw(encode(validRequest))).code, grpc.status.OK, 'gRPC infers');
  t.same(unhandled(), [], 'no unhandled rejections');
});

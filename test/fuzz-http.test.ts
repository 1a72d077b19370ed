// Fuzzing the local inference route (POST /v1/models/:name/infer) of a real agent serving the
// digits model: random JSON, hostile tensors (shapes, sizes, base64), mutated valid bodies,
// odd content types and model names, through fastify's full request pipeline (inject), then
// raw bytes over a real socket. Every answer is a 2xx or a 4xx with an error code and a
// sentence; never a 5xx, a hang or an unhandled rejection; the agent keeps serving.
import t from 'tap';
import fc from 'fast-check';
import net from 'node:net';
import { FP32, digitBatch, startAgent } from './helpers/model-packages.js';
import { RUNS, mutatedText, watchUnhandled } from './helpers/fuzz.js';

const unhandled = watchUnhandled();
const running = await startAgent({ models: [{ name: 'digits', package: FP32 }], health: { bodyLimitBytes: 256 * 1024 } });
t.teardown(() => running.stop());
const app = running.agent.http;
const N = Math.max(500, Math.floor(RUNS / 2));

interface Answer { status: number; body: string }
async function post(body: string | Buffer, contentType = 'application/json', model = 'digits'): Promise<Answer> {
  const r = await app.inject({ method: 'POST', url: `/v1/models/${encodeURIComponent(model)}/infer`, headers: { 'content-type': contentType }, payload: body });
  return { status: r.statusCode, body: r.body };
}

function checkAnswer(a: Answer): void {
  if (a.status >= 500) throw new Error(`server error ${a.status}: ${a.body.slice(0, 300)}`);
  let parsed: any;
  try { parsed = JSON.parse(a.body); } catch { throw new Error(`non-JSON answer ${a.status}: ${a.body.slice(0, 200)}`); }
  if (a.status >= 400) {
    const e = parsed?.error;
    if (typeof e?.code !== 'string' || !e.code || typeof e.message !== 'string' || e.message.length < 8) throw new Error(`unclear error ${a.status}: ${a.body.slice(0, 300)}`);
  } else if (!parsed?.outputs?.logits) {
    throw new Error(`2xx without outputs: ${a.body.slice(0, 200)}`);
  }
}

const batch = digitBatch(0, 1);
const valid = JSON.stringify({ inputs: { input: { shape: batch.shape, data: Array.from(batch.data, (x) => Math.round(x * 100) / 100) } } });

const dim = fc.oneof(fc.integer({ min: -2, max: 30 }), fc.constantFrom(0, 28, 2 ** 31, 2 ** 53, 1e300, 1.5, -0), fc.constant('N'));
const tensor = fc.oneof(
  fc.record({ shape: fc.array(dim, { maxLength: 6 }), data: fc.array(fc.oneof(fc.double(), fc.integer(), fc.string({ maxLength: 3 }), fc.constant(null)), { maxLength: 900 }) }, { requiredKeys: [] }),
  fc.record({ shape: fc.array(dim, { maxLength: 6 }), base64: fc.oneof(fc.base64String({ maxLength: 4000 }), fc.string({ maxLength: 50 })) }, { requiredKeys: [] }),
  fc.record({ dtype: fc.constantFrom('float32', 'int8', 'uint8', 'float64', 'bogus'), shape: fc.array(dim, { maxLength: 4 }), data: fc.array(fc.double(), { maxLength: 800 }) }),
  fc.array(fc.array(fc.oneof(fc.double(), fc.array(fc.double(), { maxLength: 30 })), { maxLength: 30 }), { maxLength: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
);
const bodyArb = fc.record({
  inputs: fc.oneof(fc.record({ input: tensor }), fc.dictionary(fc.string({ maxLength: 8 }), tensor, { maxKeys: 3 }), fc.jsonValue({ maxDepth: 2 })),
  outputEncoding: fc.constantFrom('json', 'base64', 'hex', 1, null),
}, { requiredKeys: [] });

t.test('the valid request is answered (the harness is sound)', async (t) => {
  const a = await post(valid);
  t.equal(a.status, 200, a.body.slice(0, 200));
  checkAnswer(a);
});

t.test('random JSON bodies', async (t) => {
  await fc.assert(fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (v) => checkAnswer(await post(JSON.stringify(v) ?? 'null'))), { numRuns: N });
  t.pass(`${N} bodies`);
});

t.test('hostile tensors: shapes, sizes, dtypes, base64', async (t) => {
  await fc.assert(fc.asyncProperty(bodyArb, async (b) => checkAnswer(await post(JSON.stringify(b)))), { numRuns: N * 2 });
  t.pass(`${2 * N} bodies`);
});

t.test('mutated valid bodies', async (t) => {
  await fc.assert(fc.asyncProperty(mutatedText(fc.constant(valid)), async (s) => checkAnswer(await post(s))), { numRuns: N * 2 });
  t.pass(`${2 * N} bodies`);
});

t.test('odd content types, raw bytes and model names', async (t) => {
  await fc.assert(fc.asyncProperty(
    fc.uint8Array({ maxLength: 2048 }),
    fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x', ''),
    fc.oneof(fc.constant('digits'), fc.string({ maxLength: 20 }), fc.constantFrom('..%2F..%2Fetc', '__proto__', 'constructor', 'digits/../digits')),
    async (bytes, ct, model) => {
      const r = await app.inject({ method: 'POST', url: `/v1/models/${encodeURIComponent(model)}/infer`, headers: ct ? { 'content-type': ct } : {}, payload: Buffer.from(bytes) });
      checkAnswer({ status: r.statusCode, body: r.body });
    }), { numRuns: N });
  const big = await post(Buffer.alloc(300 * 1024, 0x20));
  t.equal(big.status, 413, 'a body over health.bodyLimitBytes is refused with 413');
  checkAnswer(big);
});

t.test('raw bytes over a real socket do not take the server down', async (t) => {
  const { port } = new URL(running.url);
  const send = (bytes: Uint8Array): Promise<void> => new Promise((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1', () => { s.end(Buffer.from(bytes)); });
    s.on('data', () => undefined);
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.setTimeout(5000, () => s.destroy());
  });
  const requestish = fc.tuple(fc.constantFrom('POST /v1/models/digits/infer HTTP/1.1\r\n', 'GET / HTTP/1.0\r\n', 'POST /v1/models/digits/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n', ''), fc.uint8Array({ maxLength: 512 }))
    .map(([head, rest]) => Uint8Array.from([...Buffer.from(`${head}Host: x\r\nContent-Length: ${rest.length}\r\n\r\n`), ...rest]));
  await fc.assert(fc.asyncProperty(fc.oneof(requestish, fc.uint8Array({ maxLength: 512 })), async (b) => send(b)), { numRuns: 300 });
  const health = await fetch(`${running.url}/healthz`);
  t.equal(health.status, 200, 'the agent still answers /healthz');
  const r = await fetch(`${running.url}/v1/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: valid });
  t.equal(r.status, 200, 'and still infers');
});

t.test('no unhandled rejections', async (t) => {
  t.same(unhandled(), []);
});

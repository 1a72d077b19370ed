// The local endpoint when a token is set (any non-loopback bind requires one): the inference
// route and everything but the open health/page routes need "Authorization: Bearer <token>",
// path spellings do not get around it, and an idle half-sent request is cut off.
import t from 'tap';
import net from 'node:net';
import { FP32, digitBatch, startAgent } from './helpers/model-packages.js';
import { waitFor } from './helpers/wait.js';

const token = 'endpoint-test-token-0123456789';
const running = await startAgent({ models: [{ name: 'digits', package: FP32 }], health: { token, requestTimeoutMs: 500 } });
t.teardown(() => running.stop());
const batch = digitBatch(0, 1);
const body = JSON.stringify({ inputs: { input: { shape: batch.shape, data: Array.from(batch.data) } } });

t.test('inference needs the bearer token', async (t) => {
  const url = `${running.url}/v1/models/digits/infer`;
  const none = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  t.equal(none.status, 401, 'no token: 401');
  t.match(await none.json(), { error: { code: 'EDGE_UNAUTHORIZED' } });
  const wrong = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token.replace(/.$/, 'X')}` }, body });
  t.equal(wrong.status, 401, 'a wrong token of the same length: 401');
  const ok = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
  t.equal(ok.status, 200, 'the right token: 200');
  t.equal((await fetch(`${running.url}/healthz`)).status, 200, '/healthz stays open for probes');
});

t.test('path spellings do not get around the token', async (t) => {
  for (const p of ['/v1/status', '//v1/status', '/v1//status', '/v1/status?x=1', '/healthz/../v1/status', '/v1/./status', '/V1/STATUS', '/v1/models', '/metrics', '/healthz%2F..%2Fv1%2Fstatus']) {
    const r = await fetch(`${running.url}${p}`, { redirect: 'manual' });
    t.not(r.status, 200, `${p} without a token: ${r.status}`);
    t.ok(r.status === 401 || r.status === 404, `${p} is 401 or 404`);
  }
});

t.test('a half-sent request that goes quiet is cut off', async (t) => {
  const { port } = new URL(running.url);
  const s = net.connect(Number(port), '127.0.0.1');
  let closed = false;
  s.on('close', () => { closed = true; });
  s.on('error', () => undefined);
  s.on('data', () => undefined);
  await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  s.write('POST /v1/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n');
  t.teardown(() => s.destroy());
  await waitFor(() => closed, { timeoutMs: 15_000, what: 'the server closing an idle half-sent request (health.requestTimeoutMs 500)' });
  t.ok(closed);
  t.equal((await fetch(`${running.url}/healthz`)).status, 200, 'and keeps serving');
});

// Admission of inference requests (agent/runtime/admission.ts): decided from the headers, so
// under overload the excess is answered 429 before its body is read, and the admitted
// requests do not wait behind a long queue. Against the real daemon (a child process) with
// real sockets: requests that send their headers and then stall hold the queue full.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { AdmissionGate } from '../agent/runtime/admission.js';
import { spawnAgent } from './helpers/agent.js';
import { digitBatch, FP32 } from './helpers/model-packages.js';
import { waitFor } from './helpers/wait.js';

t.test('the gate: queueLimit beside the running request, the wait budget, release', async (t) => {
  const g = new AdmissionGate({ queueLimit: 2, queueWaitFactor: 0, maxQueueWaitMs: 0 });
  const held = [g.admit(), g.admit(), g.admit()];
  t.ok(held.every((a) => a.admitted), 'one running and two waiting are admitted');
  const full = g.admit();
  t.match(full, { admitted: false, reason: 'queue_full', inFlight: 3, retryAfterSeconds: 1 }, 'the fourth is refused');
  if (held[0]!.admitted) {
    held[0]!.release();
    held[0]!.release(); // twice counts once
  }
  t.equal(g.inFlight, 2, 'a release frees one place, once');
  t.ok(g.admit().admitted, 'and the next is admitted');

  const w = new AdmissionGate({ queueLimit: 100, queueWaitFactor: 1, maxQueueWaitMs: 0 });
  const a = [w.admit(), w.admit(), w.admit()];
  t.ok(a.every((x) => x.admitted), 'before 8 service times are known only queueLimit applies');
  for (const ms of [10, 10, 10, 10, 10, 10, 10, 10]) w.noteService(ms);
  t.same(w.describe(), { inFlight: 3, serviceMeanMs: 10, serviceP99Ms: 10, waitBudgetMs: 10 }, 'budget = 1 x p99 service time');
  t.match(w.admit(), { admitted: false, reason: 'wait_budget', inFlight: 3, expectedWaitMs: 30 }, '3 ahead x 10 ms is over a 10 ms budget');
  for (const x of a.slice(1)) if (x.admitted) x.release();
  t.ok(w.admit().admitted, '1 ahead x 10 ms fits');
  t.notOk(w.admit().admitted, '2 ahead x 10 ms does not');

  const fixed = new AdmissionGate({ queueLimit: 100, queueWaitFactor: 1, maxQueueWaitMs: 25 });
  for (let i = 0; i < 8; i++) fixed.noteService(10);
  t.ok(fixed.admit().admitted && fixed.admit().admitted && fixed.admit().admitted, 'maxQueueWaitMs replaces the factor: 0, 10, 20 ms expected');
  t.notOk(fixed.admit().admitted, '30 ms expected is over 25 ms');

  const ref = new AdmissionGate({ queueLimit: 100, queueWaitFactor: 1, maxQueueWaitMs: 0 });
  for (let i = 0; i < 8; i++) ref.noteService(2, true);
  for (let i = 0; i < 56; i++) ref.noteService(40);
  t.match(ref.describe(), { serviceP99Ms: 2 }, 'the budget comes from requests that ran alone, not from loaded ones');
  t.ok(ref.admit().admitted, 'an idle model admits');
  t.match(ref.admit(), { admitted: false, reason: 'wait_budget' }, 'one ahead at a loaded ~35 ms mean is over 1 x 2 ms');

  const aged = new AdmissionGate({ queueLimit: 100, queueWaitFactor: 0, maxQueueWaitMs: 0, maxRequestAgeMs: 50 });
  t.match(aged.admit(80), { admitted: false, reason: 'too_old' }, 'sent 80 ms ago, over maxRequestAgeMs 50: refused even into an idle model');
  t.ok(aged.admit(10).admitted, 'sent 10 ms ago: admitted');
  t.ok(aged.admit(undefined).admitted, 'no x-request-start: age unknown, admitted');

  const idle = new AdmissionGate({ queueLimit: 1, queueWaitFactor: 0.001, maxQueueWaitMs: 0 });
  for (let i = 0; i < 8; i++) idle.noteService(1000);
  t.ok(idle.admit().admitted, 'an idle model always admits');
});

const BATCH = digitBatch(0, 64);
const BODY = JSON.stringify({ inputs: { input: { shape: BATCH.shape, base64: Buffer.from(BATCH.data.buffer, BATCH.data.byteOffset, BATCH.data.byteLength).toString('base64') } } });

interface RawRequest {
  socket: Socket;
  /** The status line and headers of the answer, once they arrive. */
  head: Promise<{ status: number; headers: string }>;
  /** Sends the rest of the body. */
  finish(): void;
}

/** A POST whose headers (and `sendBytes` bytes of body) go out now; the rest waits for finish(). */
function rawInfer(url: string, sendBytes: number, extraHeaders = ''): RawRequest {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.write(`POST /v1/models/digits/infer HTTP/1.1\r\nHost: ${hostname}:${port}\r\n${extraHeaders}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(BODY)}\r\n\r\n`);
  if (sendBytes) socket.write(BODY.slice(0, sendBytes));
  let got = '';
  const head = new Promise<{ status: number; headers: string }>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end >= 0) resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1]), headers: got.slice(0, end).toLowerCase() });
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed before an answer (got ${JSON.stringify(got.slice(0, 80))})`)));
  });
  head.catch(() => undefined);
  return { socket, head, finish: () => socket.write(BODY.slice(sendBytes)) };
}

async function metric(url: string, re: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(re.exec(text)?.[1] ?? 0);
}

/** The daemon as a child process, serving the fp32 digits model on ONNX Runtime (one thread). */
async function daemon(t: Test, runtime: Record<string, unknown>, extra: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const agent = spawnAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], security: { requireSignedPackages: false }, runtime: { threads: 1, ...runtime }, ...extra }, { env });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  const token = (extra.health as { token?: string } | undefined)?.token;
  await waitFor(async () => (await fetch(`${url}/readyz`, { headers: token ? { authorization: `Bearer ${token}` } : {} })).status === 200, { what: 'the model ready' });
  return url;
}

/**
 * Requests in flight on purpose: while the file exists every inference waits
 * (EDGE_FAULT_HOLD_INFERENCE). A request counts against admission once its body is in, so
 * "in flight" means whole requests waiting for the model, not half-sent ones.
 */
function holdFile(t: Test): { env: NodeJS.ProcessEnv; hold(): void; release(): void } {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'edge-hold-')), 'hold');
  t.teardown(() => rmSync(path.dirname(file), { recursive: true, force: true }));
  return { env: { EDGE_FAULT_HOLD_INFERENCE: file }, hold: () => writeFileSync(file, ''), release: () => rmSync(file, { force: true }) };
}

const post = (url: string): Promise<{ status: number; retryAfter: string | null; body: any }> =>
  fetch(`${url}/v1/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY })
    .then(async (r) => ({ status: r.status, retryAfter: r.headers.get('retry-after'), body: await r.json() }));

t.test('a full queue answers 429 from the headers, before the body; overload gives only 200 and 429', async (t) => {
  const gate = holdFile(t);
  const url = await daemon(t, { queueLimit: 2, queueWaitFactor: 0 }, {}, gate.env);
  const open: Socket[] = [];
  t.teardown(() => open.forEach((s) => s.destroy()));

  // Three whole requests wait for the (held) model: one "running" place and queueLimit 2
  // waiting places are now taken.
  gate.hold();
  const stalled = [rawInfer(url, BODY.length), rawInfer(url, BODY.length), rawInfer(url, BODY.length)];
  open.push(...stalled.map((r) => r.socket));
  await waitFor(async () => (await (await fetch(`${url}/v1/models/digits`)).json() as any).admission?.inFlight === 3, { what: '3 requests in flight' });

  // A fourth sends only its headers: the answer comes without a byte of its body.
  const headersOnly = rawInfer(url, 0);
  open.push(headersOnly.socket);
  const refused = await Promise.race([headersOnly.head, new Promise<never>((_, reject) => {
    setTimeout(() => reject(new Error('no answer within 10 s while the body was held back: admission waits for the body')), 10_000).unref();
  })]);
  t.equal(refused.status, 429, 'refused before its body was sent');
  t.match(refused.headers, /\r\nretry-after: \d+/, 'with Retry-After');

  // Real clients with whole bodies, many at once, while the queue is held full: all 429.
  const flood = await Promise.all(Array.from({ length: 20 }, () => post(url)));
  t.same([...new Set(flood.map((r) => r.status))], [429], 'every request beyond the queue gets 429');
  t.equal(flood[0]!.body.error.code, 'EDGE_OVERLOADED');
  t.match(flood[0]!.body.error.message, /queue is full, retry later \(3 requests in flight \(runtime.queueLimit\)\)/);
  t.ok(flood.every((r) => Number(r.retryAfter) >= 1), 'each with Retry-After');

  // A client that goes away frees its place; the held ones complete and are served.
  stalled[0]!.socket.destroy();
  await waitFor(async () => (await (await fetch(`${url}/v1/models/digits`)).json() as any).admission?.inFlight === 2, { what: 'the aborted request released' });
  const late = rawInfer(url, 0);
  open.push(late.socket);
  late.finish();
  await waitFor(async () => (await (await fetch(`${url}/v1/models/digits`)).json() as any).admission?.inFlight === 3, { what: 'the late request admitted once its body is in' });
  gate.release();
  const served = await Promise.all([stalled[1]!.head, stalled[2]!.head, late.head]);
  t.same(served.map((h) => h.status), [200, 200, 200], 'the stalled requests and the one admitted after the abort are served');

  // Real overload: 24 clients in a closed loop, each request a full body, against one
  // running and two waiting places. Nothing but 200 and 429.
  const statuses = new Map<number, number>();
  await Promise.all(Array.from({ length: 24 }, async () => {
    for (let i = 0; i < 15; i++) {
      const r = await post(url).catch(() => ({ status: -1 }));
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
  }));
  t.comment(`24 clients x 15 requests: ${[...statuses].map(([s, n]) => `${s}:${n}`).join(' ')}`);
  t.same([...statuses.keys()].sort(), [200, 429], 'only 200 and 429 under overload');
  const n429 = 21 + (statuses.get(429) ?? 0);
  t.equal(await metric(url, /edge_model_admission_refused_total\{[^}]*reason="queue_full"[^}]*\} (\d+)/), n429, 'every 429 is counted in edge_model_admission_refused_total');
  // Every refusal, whatever its reason, is also an "overloaded" error (read from one scrape).
  const text = await (await fetch(`${url}/metrics`)).text();
  const refusedAll = [...text.matchAll(/edge_model_admission_refused_total\{[^}]*model="digits"[^}]*\} (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  const overloaded = Number(/edge_model_errors_total\{[^}]*kind="overloaded"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
  t.ok(refusedAll >= n429, `at least every 429 refused (${refusedAll} >= ${n429})`);
  t.equal(overloaded, refusedAll, 'and each refusal counted as overloaded in edge_model_errors_total');
  await waitFor(async () => (await (await fetch(`${url}/v1/models/digits`)).json() as any).admission?.inFlight === 0, { what: 'nothing in flight after the load' });
});

t.test('x-request-start: a request that waited unread longer than maxRequestAgeMs gets 429 before its body', async (t) => {
  const url = await daemon(t, { maxRequestAgeMs: 1000 });
  const { hostname, port } = new URL(url);
  const stamped = (sentAt: number): RawRequest => {
    const socket = connect(Number(port), hostname);
    socket.write(`POST /v1/models/digits/infer HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nX-Request-Start: t=${sentAt}\r\nContent-Length: ${Buffer.byteLength(BODY)}\r\n\r\n`);
    let got = '';
    const head = new Promise<{ status: number; headers: string }>((resolve, reject) => {
      socket.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n')) resolve({ status: Number(got.slice(9, 12)), headers: got.toLowerCase() });
      });
      socket.on('error', reject);
    });
    return { socket, head, finish: () => socket.write(BODY) };
  };
  const old = stamped(Date.now() - 5000);
  t.teardown(() => old.socket.destroy());
  const refused = await old.head;
  t.equal(refused.status, 429, 'sent 5 s ago: refused from its headers, its body never sent');
  t.match(refused.headers, /\r\nretry-after: \d+/, 'with Retry-After');
  const fresh = stamped(Date.now());
  t.teardown(() => fresh.socket.destroy());
  fresh.finish();
  t.equal((await fresh.head).status, 200, 'sent just now: served');
  t.equal(await metric(url, /edge_model_admission_refused_total\{[^}]*reason="too_old"[^}]*\} (\d+)/), 1, 'counted with reason too_old');
});

t.test('the wait budget: a fixed maxQueueWaitMs refuses once the expected wait exceeds it', async (t) => {
  const gate = holdFile(t);
  const url = await daemon(t, { queueLimit: 64, maxQueueWaitMs: 1 }, {}, gate.env);
  // Eight served requests give the gate its service time (a batch of 64 takes well over 1 ms).
  for (let i = 0; i < 8; i++) t.equal((await post(url)).status, 200, `request ${i} served`);
  const info = (await (await fetch(`${url}/v1/models/digits`)).json() as any).admission;
  t.comment(`admission after 8 requests: ${JSON.stringify(info)}`);
  t.ok(info.serviceMeanMs > 1, 'service time known');
  // One held request in flight: a newcomer's expected wait is 1 x mean > 1 ms.
  gate.hold();
  const stalled = rawInfer(url, BODY.length);
  t.teardown(() => stalled.socket.destroy());
  await waitFor(async () => (await (await fetch(`${url}/v1/models/digits`)).json() as any).admission?.inFlight === 1, { what: '1 request in flight' });
  const r = await post(url);
  t.equal(r.status, 429, 'refused by the wait budget, far below queueLimit');
  t.match(r.body.error.message, /1 requests in flight, expected wait \d+ ms over the budget/);
  t.equal(await metric(url, /edge_model_admission_refused_total\{[^}]*reason="wait_budget"[^}]*\} (\d+)/), 1, 'counted with reason wait_budget');
  gate.release();
  t.equal((await stalled.head).status, 200, 'the admitted one is served');
});

t.test('with an API token, overload does not answer before the token is checked', async (t) => {
  const token = 'overload-token-123456';
  const auth = { authorization: `Bearer ${token}` };
  const gate = holdFile(t);
  const url = await daemon(t, { queueLimit: 1, queueWaitFactor: 0 }, { health: { port: 0, token } }, gate.env);
  const open: Socket[] = [];
  t.teardown(() => open.forEach((s) => s.destroy()));
  gate.hold();
  t.teardown(() => gate.release());
  const stalled = [rawInfer(url, BODY.length, `Authorization: Bearer ${token}\r\n`), rawInfer(url, BODY.length, `Authorization: Bearer ${token}\r\n`)];
  open.push(...stalled.map((r) => r.socket));
  await waitFor(async () => (await (await fetch(`${url}/v1/models/digits`, { headers: auth })).json() as any).admission?.inFlight === 2, { what: '2 requests in flight' });
  const anonymous = await fetch(`${url}/v1/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
  t.equal(anonymous.status, 401, 'without the token: 401, not 429 (the queue state is not told to strangers)');
  const wrong = await fetch(`${url}/v1/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer nope' }, body: BODY });
  t.equal(wrong.status, 401);
  const withToken = await fetch(`${url}/v1/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: BODY });
  t.equal(withToken.status, 429, 'with the token: 429');
  t.equal(((await withToken.json()) as any).error.code, 'EDGE_OVERLOADED');
});

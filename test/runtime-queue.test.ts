// The per-model queue: one request runs at a time in arrival order, at most `limit` wait, and
// beyond that a request is refused at once with 429 instead of growing memory.
import t from 'tap';
import { InferenceQueue } from '../agent/runtime/queue.js';
import { digitBatch, FP32, startAgent } from './helpers/model-packages.js';

t.test('the queue runs in order, bounds the waiting, and refuses the rest', async (t) => {
  const depths: number[] = [];
  const q = new InferenceQueue('digits', 2, (d) => depths.push(d));
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const first = q.run(async () => { await gate; order.push('first'); return 1; });
  const second = q.run(async () => { order.push('second'); return 2; });
  const third = q.run(async () => { order.push('third'); return 3; });
  t.equal(q.depth, 3, 'one running, two waiting');
  await t.rejects(q.run(async () => 4), { code: 'EDGE_OVERLOADED', statusCode: 429, message: /model digits: queue is full/ }, 'the fourth is refused');
  release();
  t.same(await Promise.all([first, second, third]), [1, 2, 3]);
  t.same(order, ['first', 'second', 'third'], 'arrival order');
  t.equal(q.depth, 0);
  t.equal(depths.at(-1), 0, 'depth reported back to 0');
  t.equal(Math.max(...depths), 3);
  // A failing job frees its place.
  await t.rejects(q.run(async () => { throw new Error('boom'); }), /boom/);
  t.equal(await q.run(async () => 'after'), 'after');
});

t.test('a request whose client went away takes no place: refused on entry, taken out while waiting', async (t) => {
  const q = new InferenceQueue('digits', 1);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const first = q.run(async () => { await gate; return 'first'; });
  const gone = new AbortController();
  gone.abort();
  await t.rejects(q.run(async () => 'never', gone.signal), { code: 'EDGE_DEADLINE_EXCEEDED' }, 'already gone: not queued');
  t.equal(q.depth, 1, 'and it took no place');
  const leaving = new AbortController();
  let ran = false;
  const waiter = q.run(async () => { ran = true; return 'left'; }, leaving.signal);
  t.equal(q.depth, 2, 'one running, one waiting');
  leaving.abort();
  await t.rejects(waiter, { code: 'EDGE_DEADLINE_EXCEEDED' }, 'gone while waiting');
  t.equal(q.depth, 1, 'its place is free again');
  // Without the departed one in line, the one waiting place takes a new request.
  const next = q.run(async () => 'next');
  release();
  t.same(await Promise.all([first, next]), ['first', 'next']);
  t.notOk(ran, 'the departed request never ran');
  t.equal(q.depth, 0);
});

t.test('over HTTP: a full queue answers 429, the rest are served, nothing else fails', async (t) => {
  const running = await startAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], runtime: { queueLimit: 1, threads: 1 } });
  t.teardown(() => running.stop());
  const batch = digitBatch(0, 256);
  const body = JSON.stringify({ inputs: { input: { shape: batch.shape, base64: Buffer.from(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength).toString('base64') } } });
  const send = () => fetch(`${running.url}/v1/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    .then(async (r) => ({ status: r.status, body: await r.json() as { error?: { code: string; message: string } } }));
  const results = await Promise.all(Array.from({ length: 16 }, send));
  const statuses = results.map((r) => r.status);
  t.same([...new Set(statuses)].sort(), [200, 429], `only 200 and 429 (${statuses.join(' ')})`);
  t.ok(statuses.filter((s) => s === 200).length >= 2, 'the running and the waiting request are served');
  const refused = results.find((r) => r.status === 429)!;
  t.equal(refused.body.error?.code, 'EDGE_OVERLOADED');
  t.match(refused.body.error?.message, /queue is full, retry later/);
  const later = await send();
  t.equal(later.status, 200, 'served again once the queue drains');
  const metrics = await (await fetch(`${running.url}/metrics`)).text();
  const overloaded = Number(/edge_model_errors_total\{[^}]*kind="overloaded"[^}]*\} (\d+)/.exec(metrics)?.[1]);
  t.equal(overloaded, statuses.filter((s) => s === 429).length, 'each 429 is counted as overloaded');
});

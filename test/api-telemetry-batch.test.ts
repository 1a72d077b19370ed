// Issue 17, case 2: a telemetry batch over HTTP is all or nothing. A batch refused for one
// record stores none of the others, so the client can fix it and send it again without the
// good records being stored twice under new sequence numbers (which the controller could not
// de-duplicate). The real daemon (dist/) as a child process and its SQLite file.
import t from 'tap';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { spawnAgent } from './helpers/agent.js';
import { postJson } from './helpers/model-packages.js';
import { TelemetryBuffer } from '../agent/telemetry/buffer.js';
import { parseConfig } from '../agent/config/load.js';

t.setTimeout(120_000);

t.test('a batch with one record over telemetry.maxRecordBytes is refused whole; sent again fixed, each record is stored once', async (t) => {
  const agent = spawnAgent({ deviceId: 'batch-dev', telemetry: { maxRecordBytes: 1024 } });
  t.teardown(async () => {
    agent.kill('SIGKILL');
    await agent.exited();
    rmSync(agent.dir, { recursive: true, force: true });
  });
  const url = await agent.ready(60_000);
  const stats = async (): Promise<{ accepted: number; depth: number; lastSeq: number }> => (await fetch(`${url}/v1/telemetry`)).json() as never;

  const bad = await postJson(`${url}/v1/telemetry/samples`, { records: [{ payload: { n: 1 } }, { payload: { n: 2 } }, { payload: 'x'.repeat(3000) }] });
  t.equal(bad.status, 400, 'refused');
  t.equal(bad.body.error.code, 'EDGE_TELEMETRY_INVALID', 'the code says the record was invalid');
  t.match(bad.body.error.message, /record 2: payload of samples is 3002 bytes, the limit is 1024; nothing of the batch of 3 was stored/, 'the error names the record and says nothing was stored');
  const after = await stats();
  t.equal(after.accepted, 0, 'accepted 0: none of the good records was kept');
  t.equal(after.lastSeq, 0, 'no sequence number was used');

  const fixed = await postJson(`${url}/v1/telemetry/samples`, { records: [{ payload: { n: 1 } }, { payload: { n: 2 } }] });
  t.equal(fixed.status, 201, 'the fixed batch is accepted');
  t.same(fixed.body.seqs, [1, 2], 'under the first two sequence numbers');
  t.equal((await stats()).accepted, 2, 'accepted 2');

  // The SQLite file itself: each record once.
  const db = new Database(path.join(agent.dir, 'data', 'telemetry.db'), { readonly: true });
  t.teardown(() => db.close());
  const rows = db.prepare("SELECT seq, payload FROM records WHERE stream = 'samples' ORDER BY seq").all() as { seq: number; payload: string }[];
  t.same(rows, [{ seq: 1, payload: '{"n":1}' }, { seq: 2, payload: '{"n":2}' }], 'the database holds the two records once');
});

t.test('a record that could not fit mqtt.batchMaxBytes even alone after encoding is refused at the door, with its batch', async (t) => {
  const agent = spawnAgent({ deviceId: 'batch-dev', mqtt: { batchMaxBytes: 2048 } });
  t.teardown(async () => {
    agent.kill('SIGKILL');
    await agent.exited();
    rmSync(agent.dir, { recursive: true, force: true });
  });
  const url = await agent.ready(60_000);
  const blob = randomBytes(2400).toString('base64'); // 3,200 characters gzip cannot shrink below ~2,450 bytes
  const bad = await postJson(`${url}/v1/telemetry/samples`, { records: [{ payload: { n: 1 } }, { payload: blob }] });
  t.equal(bad.status, 400, 'refused, instead of accepted and quarantined later');
  t.match(bad.body.error.message, /record 1: payload of samples does not fit a telemetry message even alone: \d+ bytes encoded, mqtt.batchMaxBytes is 2048/, 'the error says which limit');
  t.equal(((await (await fetch(`${url}/v1/telemetry`)).json()) as { accepted: number }).accepted, 0, 'accepted 0');
  const compressible = await postJson(`${url}/v1/telemetry/samples`, { payload: 'x'.repeat(3200) });
  t.equal(compressible.status, 201, 'a record as long that compresses to fit is accepted');
});

t.test('a batch that would go beyond the backlog while the disk refuses writes is refused whole', async (t) => {
  const dir = t.testdir();
  const config = parseConfig({ deviceId: 'batch-dev', dataDir: dir, telemetry: { maxPendingRecords: 100 } }, 'test config', dir).telemetry;
  // A page cap well below the budget: SQLite itself reports SQLITE_FULL, and eviction cannot
  // make room for a record larger than what is queued (see telemetry-bounds.test.ts).
  const b = new TelemetryBuffer({ dir, config: { ...config, maxBytes: 1024 * 1024, maxRecordBytes: 128 * 1024, commitMaxRecords: 1 }, pageCapBytes: 96 * 1024 });
  b.startSync();
  t.teardown(() => b.stopSync());
  const big = 'y'.repeat(100 * 1024);
  b.record('events', big); // cannot be written: the disk (here: the page cap) refuses
  const failing = b.stats().failing;
  t.ok(failing, `the buffer is failing: ${failing}`);
  const pending = b.stats().pending;
  const room = 100 - pending;
  const before = b.stats().accepted;
  t.throws(() => b.recordBatch('events', Array.from({ length: room + 1 }, (_, i) => ({ payload: { i } }))),
    { code: 'EDGE_TELEMETRY_BACKLOG' }, `a batch of ${room + 1} with room for ${room} is refused`);
  t.equal(b.stats().accepted, before, 'none of it was accepted');
  t.equal(b.stats().pending, pending, 'none of it waits in memory');
});

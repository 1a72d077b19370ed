// Delivery from the telemetry buffer with real SQLite files: leases, ack, nack, lapse,
// restart, per-stream order, quarantine of poison records, send budgets, the wire encoding.
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { TelemetryBuffer } from '../agent/telemetry/buffer.js';
import { telemetryConfig } from '../agent/telemetry/defaults.js';
import { decodeBatch, encodeBatch } from '../protocol/telemetry-batch.js';
import type { TelemetryConfig } from '../agent/telemetry/types.js';
import { waitFor } from './helpers/wait.js';

function setup(t: Test, overrides: Partial<TelemetryConfig> = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'telemetry-leases-'));
  const config = telemetryConfig(overrides);
  const open = () => {
    const b = new TelemetryBuffer({ dir, config });
    b.startSync();
    t.teardown(() => b.stopSync());
    return b;
  };
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, file: path.join(dir, config.file), open };
}

function rowsOnDisk(file: string): number[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT seq FROM records ORDER BY seq').all() as { seq: number }[]).map((r) => r.seq);
  } finally {
    db.close();
  }
}

t.test('ack deletes exactly the leased records; the message decodes to the same records', async (t) => {
  const { file, open } = setup(t);
  const b = open();
  const seqs = Array.from({ length: 300 }, (_, i) => b.record('metrics', { i, latencyMs: i / 10 }));
  await b.whenCommitted(seqs.at(-1)!);
  t.ok(b.committedSeq >= seqs.at(-1)!, 'whenCommitted resolved after the commit');
  const l = b.lease(4096, { stream: 'metrics' })!;
  t.ok(l, 'a lease');
  t.ok(l.payload.length <= 4096, `message within maxBytes (${l.payload.length})`);
  t.ok(l.count > 0 && l.count < 300, `a lease of 4 KiB takes part of the stream (${l.count})`);
  t.same(l.records.map((r) => r.seq), seqs.slice(0, l.count), 'oldest first, in order');
  const d = decodeBatch(l.payload);
  t.same(d.records, l.records, 'decodeBatch gives back the leased records');
  t.match(d, { v: 1, stream: 'metrics', count: l.count, first: l.firstSeq, last: l.lastSeq, db: b.dbId });
  b.stopSync();
  t.same(rowsOnDisk(file), seqs, 'leasing alone deletes nothing');
  const b2 = open();
  const l2 = b2.lease(4096)!;
  t.equal(b2.ack(l2.id), l2.count, 'ack reports the records it deleted');
  t.same(rowsOnDisk(file), seqs.slice(l2.count), 'ack deleted exactly the leased records');
  t.equal(b2.ack(l2.id), 0, 'a second ack of the same lease deletes nothing');
  const s = b2.stats();
  t.equal(s.streams.metrics.delivered, l2.count);
  t.equal(s.accepted, s.delivered + s.evicted + s.quarantined + s.depth, 'accepted = delivered + evicted + quarantined + queued');
});

t.test('un-acked leases come back after a restart, first and in order; per-stream order holds', async (t) => {
  const { open } = setup(t);
  let b = open();
  const sent: Record<string, number[]> = { metrics: [], drift: [], alerts: [] };
  for (let i = 0; i < 600; i++) {
    const stream = i % 10 === 0 ? 'alerts' : i % 3 === 0 ? 'drift' : 'metrics';
    sent[stream].push(b.record(stream, { i }));
  }
  const first = b.lease(2048)!;
  t.equal(first.stream, 'alerts', 'the highest-priority stream is offered first');
  const other = b.lease(2048)!;
  t.not(other.stream, 'alerts', 'a stream with a lease out is not leased twice');
  b.stopSync(); // neither lease acked
  b = open();
  const received: Record<string, number[]> = { metrics: [], drift: [], alerts: [] };
  const again = b.lease(2048, { stream: first.stream })!;
  t.same(again.records.map((r) => r.seq), first.records.map((r) => r.seq), 'the un-acked lease comes back with the same records');
  b.nack(again.id);
  for (let l = b.lease(2048); l; l = b.lease(2048)) {
    received[l.stream].push(...l.records.map((r) => r.seq));
    b.ack(l.id);
  }
  for (const s of Object.keys(sent)) t.same(received[s], sent[s], `${s}: every record once, in sequence order`);
  t.equal(b.stats().depth, 0, 'queue empty');
});

t.test('a lapsed lease returns its records (counted as duplicates); its late ack still deletes', async (t) => {
  const { open } = setup(t, { leaseTimeoutSeconds: 1 });
  const b = open();
  for (let i = 0; i < 50; i++) b.record('events', { i });
  const l = b.lease(64 * 1024)!;
  t.equal(l.count, 50);
  t.equal(b.lease(64 * 1024), undefined, 'nothing else to lease while it is out');
  const back = await waitFor(() => b.lease(64 * 1024), { timeoutMs: 5000, what: 'the lease to lapse' });
  t.same(back.records.map((r) => r.seq), l.records.map((r) => r.seq), 'same records after the lapse');
  t.equal(b.stats().duplicates, 50, 'the re-sent records are counted as duplicates');
  t.equal(b.ack(l.id), 0, 'the late ack of the lapsed lease leaves the newer lease its records');
  t.equal(b.ack(back.id), 50, 'the newer lease deletes them');
  b.record('events', { late: true });
  const l3 = b.lease(64 * 1024)!;
  b.nack(l3.id);
  t.equal(b.ack(l3.id), 1, 'an ack after nack still deletes (the broker may have received it)');
  t.equal(b.stats().depth, 0);
});

t.test('poison records: quarantine by lease or by seq, too-large records set aside, the stream goes on', async (t) => {
  const { open } = setup(t);
  const b = open();
  const a = b.record('events', { ok: 1 });
  const big = b.record('events', { blob: randomBytes(6000).toString('base64') });
  const c = b.record('events', { ok: 2 });
  const l = b.lease(2048)!;
  t.same(l.records.map((r) => r.seq), [a, c], 'the oversized record does not block the one behind it');
  const q = b.quarantined();
  t.same(q.map((r) => r.seq), [big], 'it was set aside');
  t.match(q[0].reason, /larger than the message limit \(2048 bytes\)/);
  t.equal(b.quarantine(l.id, 'broker refused: payload format invalid'), 2, 'quarantine a whole lease');
  t.same(b.quarantined().map((r) => [r.seq, r.reason]), [[c, 'broker refused: payload format invalid'], [big, q[0].reason], [a, 'broker refused: payload format invalid']]);
  const d = b.record('events', { ok: 3 });
  const e = b.record('events', { ok: 4 });
  t.equal(b.quarantine([d], 'rejected'), 1, 'quarantine by sequence number');
  t.same(b.lease(2048)!.records.map((r) => r.seq), [e]);
  const s = b.stats();
  t.equal(s.quarantined, 4);
  t.equal(s.accepted, s.delivered + s.evicted + s.quarantined + s.depth, 'the identity holds with quarantine');
});

t.test('bad input gets a clear error and is not accepted', async (t) => {
  const { open } = setup(t, { maxRecordBytes: 1000 });
  const b = open();
  t.throws(() => b.record('Bad Stream', 1), { code: 'EDGE_TELEMETRY_INVALID', message: /stream "Bad Stream" must match/ });
  t.throws(() => b.record('metrics', undefined), { code: 'EDGE_TELEMETRY_INVALID', message: /must be a JSON value, got undefined/ });
  t.throws(() => b.record('metrics', { n: 1n }), { code: 'EDGE_TELEMETRY_INVALID', message: /cannot be encoded as JSON/ });
  t.throws(() => b.record('metrics', 'x'.repeat(2000)), { code: 'EDGE_TELEMETRY_INVALID', message: /2002 bytes, the limit is 1000/ });
  t.throws(() => b.record('metrics', 1, { priority: 12 }), { code: 'EDGE_TELEMETRY_INVALID', message: /priority must be an integer 0..9/ });
  t.throws(() => b.lease(10), { code: 'EDGE_TELEMETRY_INVALID', message: /maxBytes must be an integer >= 1024/ });
  await t.rejects(b.whenCommitted(99), { code: 'EDGE_TELEMETRY_INVALID', message: /no record has sequence number 99 yet/ });
  t.equal(b.stats().accepted, 0, 'nothing was accepted');
  t.equal(b.record('metrics', 1), 1, 'the buffer still works and the refused records used no sequence numbers');
  b.stopSync();
  t.throws(() => b.record('metrics', 1), { code: 'EDGE_TELEMETRY_CLOSED' });
  t.equal(b.notReady(), 'storage not open');
});

t.test('send budget per stream: bytes per day stop a stream, alerts are exempt, the day survives a restart', async (t) => {
  const { open } = setup(t, { streams: { metrics: { bytesPerDay: 3000 } } });
  let b = open();
  for (let i = 0; i < 2000; i++) b.record('metrics', { i, r: randomBytes(8).toString('hex') });
  for (let i = 0; i < 3; i++) b.record('alerts', { i });
  let sent = 0;
  for (let l = b.lease(1024, { stream: 'metrics' }); l; l = b.lease(1024, { stream: 'metrics' })) {
    sent += l.payload.length;
    b.ack(l.id);
  }
  t.ok(sent >= 2000 && sent <= 3000 + 1024, `sent ${sent} bytes of a 3000-byte day`);
  t.ok(b.stats().streams.metrics.depth > 0, 'metrics wait for tomorrow');
  t.equal(b.stats().streams.metrics.budgetLeftToday, Math.max(0, 3000 - sent));
  t.equal(b.retryAfterMs(), 0, 'alerts can go now');
  const al = b.lease(1024)!;
  t.equal(al.stream, 'alerts', 'alerts still go');
  b.ack(al.id);
  t.ok(b.retryAfterMs() > 0, `then retryAfterMs says when metrics may go (${b.retryAfterMs()} ms)`);
  b.stopSync();
  b = open();
  t.equal(b.stats().streams.metrics.sentBytesToday, sent, 'bytes sent today survive a restart');
  t.equal(b.lease(1024, { stream: 'metrics' }), undefined, 'and still stop the stream');
});

t.test('send budget per second: a token bucket refills', async (t) => {
  const { open } = setup(t, { burstSeconds: 1, streams: { samples: { bytesPerSecond: 200 } } });
  const b = open();
  for (let i = 0; i < 500; i++) b.record('samples', { i, r: randomBytes(16).toString('hex') });
  const first = b.lease(64 * 1024)!;
  t.ok(first && first.payload.length <= 200 * 2, `the first message fits the bucket (${first.payload.length})`);
  b.ack(first.id);
  // Drain the bucket, then wait for it to refill.
  for (let l = b.lease(64 * 1024); l; l = b.lease(64 * 1024)) b.ack(l.id);
  t.ok(b.stats().streams.samples.depth > 0, 'records wait for budget');
  t.equal(b.lease(64 * 1024), undefined, 'an empty bucket stops the stream');
  t.ok(b.retryAfterMs() > 0, `retryAfterMs ${b.retryAfterMs()} ms`);
  const refilled = await waitFor(() => b.lease(64 * 1024, { stream: 'samples' }), { timeoutMs: 5000, what: 'the bucket to refill' });
  t.ok(refilled.count > 0, 'a lease after the refill');
});

t.test('encoding: decodeBatch refuses what is not a batch, with a clear error', async (t) => {
  const good = encodeBatch('metrics', [{ seq: 5, ts: 1, payload: { a: 1 } }, { seq: 6, ts: 2, payload: [1, 2] }], 'db1');
  t.same(decodeBatch(good).records.map((r) => r.payload), [{ a: 1 }, [1, 2]]);
  t.throws(() => decodeBatch(Buffer.from('not gzip')), { code: 'EDGE_TELEMETRY_BATCH_INVALID', message: /expected gzip-compressed JSON Lines/ });
  t.throws(() => decodeBatch(gzipSync('{"v":2,"stream":"m","count":0}\n')), /unsupported version 2/);
  // Found by fuzz-telemetry (seed 2114787062): a count that is not a number was printed as [object Object].
  t.throws(() => decodeBatch(gzipSync('{"v":1,"stream":"m","count":{}}\n{"seq":1,"ts":1,"p":1}\n')), /header "count" must be a whole number of records, got \{\}/);
  t.throws(() => decodeBatch(gzipSync('{"v":{},"stream":"m","count":0}\n')), /unsupported version \{\} \(expected 1\)/);
  t.throws(() => decodeBatch(gzipSync('{"v":1,"stream":"m","count":2,"first":1,"last":1}\n{"seq":1,"ts":1,"p":1}\n')), /header says 2 records, message has 1/);
  t.throws(() => decodeBatch(gzipSync('{"v":1,"stream":"m","count":2,"first":2,"last":1}\n{"seq":2,"ts":1,"p":1}\n{"seq":1,"ts":1,"p":1}\n')), /sequence 1 is not above 2/);
  t.throws(() => decodeBatch(gzipSync('{"v":1,"stream":"m","count":1,"first":1,"last":1}\n{"seq":1,"p":1}\n')), /expected \{"seq"/);
  t.throws(() => decodeBatch(gzipSync(Buffer.alloc(2 * 1024 * 1024, 32)), { maxBytes: 1024 * 1024 }), /decompresses to more than 1048576 bytes/);
});

t.test('a commit listener that throws does not make record() fail', async (t) => {
  const { open } = setup(t, { commitMaxRecords: 10 });
  const b = open();
  let calls = 0;
  b.on('commit', () => {
    calls++;
    throw new Error('listener bug');
  });
  const seqs: number[] = [];
  for (let i = 0; i < 25; i++) seqs.push(b.record('events', { i }));
  b.flushSync();
  t.ok(calls >= 3, `the listener ran (${calls} commits)`);
  t.equal(b.committedSeq, seqs.at(-1), 'every record committed');
  t.equal(b.lease(64 * 1024)!.count, 25);
});

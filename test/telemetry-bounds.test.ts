// Bounds of the telemetry buffer with real SQLite files: a burst ten times the disk budget,
// eviction by priority then age, counters that add up, max age and ttl, and a disk that is
// full for real (SQLite's page cap returns SQLITE_FULL).
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TelemetryBuffer } from '../agent/telemetry/buffer.js';
import { telemetryConfig } from '../agent/telemetry/defaults.js';
import type { TelemetryBufferOptions, TelemetryConfig, TelemetryStats } from '../agent/telemetry/types.js';
import { waitFor } from './helpers/wait.js';

function setup(t: Test, overrides: Partial<TelemetryConfig>, extra: Partial<TelemetryBufferOptions> = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'telemetry-bounds-'));
  const config = telemetryConfig(overrides);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const open = () => {
    const b = new TelemetryBuffer({ dir, config, ...extra });
    b.startSync();
    t.teardown(() => b.stopSync());
    return b;
  };
  return { file: path.join(dir, config.file), open };
}

function onDisk(file: string): Map<string, number[]> {
  const db = new Database(file, { readonly: true });
  try {
    const out = new Map<string, number[]>();
    for (const r of db.prepare('SELECT seq, stream FROM records ORDER BY seq').all() as { seq: number; stream: string }[]) {
      if (!out.has(r.stream)) out.set(r.stream, []);
      out.get(r.stream)!.push(r.seq);
    }
    return out;
  } finally {
    db.close();
  }
}

function checkIdentity(t: Test, s: TelemetryStats, what: string): void {
  t.equal(s.accepted, s.delivered + s.evicted + s.quarantined + s.depth, `${what}: accepted ${s.accepted} = delivered ${s.delivered} + evicted ${s.evicted} + quarantined ${s.quarantined} + queued ${s.depth}`);
  for (const [name, st] of Object.entries(s.streams)) {
    t.equal(st.accepted, st.delivered + st.evicted + st.quarantined + st.depth, `${what}: ${name} adds up`);
  }
}

const pad = 'm'.repeat(150);

t.test('a burst of 10x the budget: file within budget, eviction by priority then age, counters add up', async (t) => {
  const maxBytes = 512 * 1024;
  const { file, open } = setup(t, { maxBytes });
  let b = open();
  const sent = { alerts: [] as number[], metrics: [] as number[], samples: [] as number[] };
  let delivered = 0;
  let bytesRecorded = 0;
  for (let i = 0; bytesRecorded < 10 * maxBytes; i++) {
    const stream = i % 100 === 0 ? 'alerts' : i % 3 === 0 ? 'samples' : 'metrics';
    const p = { i, pad };
    bytesRecorded += JSON.stringify(p).length;
    sent[stream].push(b.record(stream, p));
    if (i % 5000 === 4999) {
      // Some delivery in between, so "delivered" takes part in the sum.
      const l = b.lease(8 * 1024, { stream: 'metrics' });
      if (l) delivered += b.ack(l.id);
    }
  }
  b.flushSync();
  const s = b.stats();
  t.ok(s.fileBytes <= maxBytes, `database file ${s.fileBytes} bytes <= budget ${maxBytes}`);
  t.ok(s.walBytes <= maxBytes, `WAL ${s.walBytes} bytes, checkpointed in proportion to the budget`);
  t.ok(s.evicted > 0, `records were evicted (${s.evicted})`);
  t.equal(s.delivered, delivered, 'delivered counts what was acked');
  checkIdentity(t, s, 'after the burst');

  const disk = onDisk(file);
  t.same(disk.get('alerts'), sent.alerts, `all ${sent.alerts.length} alerts kept: never evicted for metrics or samples`);
  t.equal(s.streams.alerts.evicted, 0);
  const metricsLeft = disk.get('metrics') ?? [];
  const deliveredOrEvicted = sent.metrics.slice(0, sent.metrics.length - metricsLeft.length);
  t.same(metricsLeft, sent.metrics.slice(sent.metrics.length - metricsLeft.length), 'surviving metrics are the newest ones (oldest evicted first)');
  const samplesLeft = disk.get('samples') ?? [];
  const newestEvictedMetric = deliveredOrEvicted.at(-1) ?? 0;
  t.ok(samplesLeft.every((seq) => seq > newestEvictedMetric), `no sample older than an evicted metric survives (lower priority goes first): ${samplesLeft.length} samples left`);
  t.ok(s.streams.samples.evicted > s.streams.metrics.evicted * 0.5, `samples took the larger share of eviction (${s.streams.samples.evicted} samples, ${s.streams.metrics.evicted} metrics)`);
  const bySpace = (x: 'budget' | 'full') => s.streams.samples.evictedBy[x] + s.streams.metrics.evictedBy[x];
  t.equal(bySpace('budget') + bySpace('full'), s.evicted, `all evictions were for space: ${bySpace('budget')} over the budget, ${bySpace('full')} when the file hit its cap`);
  for (const [name, seqs] of disk) t.equal(s.streams[name].depth, seqs.length, `${name}: queued count matches the file`);

  b.stopSync();
  t.ok(statSync(file).size <= maxBytes, `checkpointed file ${statSync(file).size} bytes <= budget ${maxBytes}`);
  b = open();
  const again = b.stats();
  checkIdentity(t, again, 'after a restart');
  t.equal(again.evicted, s.evicted, 'eviction counters survive a restart');
  t.equal(again.accepted, s.accepted, 'accepted survives a restart');
});

t.test('maxAgeSeconds and ttlSeconds evict what outlived them', async (t) => {
  const { open } = setup(t, { maxAgeSeconds: 60 });
  const b = open();
  const keep = b.record('alerts', { keep: true });
  const short = b.record('events', { ttl: true }, { ttlSeconds: 5 });
  b.record('metrics', { old: 1 });
  const now = Date.now();
  t.equal(b.sweepExpired(now), 0, 'nothing has expired yet');
  t.equal(b.sweepExpired(now + 10_000), 1, 'the 5 s ttl has passed');
  t.equal(b.stats().streams.events.evictedBy.ttl, 1);
  const n = b.sweepExpired(now + 61_000);
  t.equal(n, 2, 'past maxAgeSeconds every stream is evicted, alerts too');
  t.equal(b.stats().streams.metrics.evictedBy.age, 1);
  t.equal(b.stats().streams.alerts.evictedBy.age, 1);
  t.ok(keep < short, 'sequence numbers');
  checkIdentity(t, b.stats(), 'after expiry');
});

t.test('SQLITE_FULL (the file hits its page cap): evicts and goes on, nothing accepted is silently lost', async (t) => {
  const cap = 256 * 1024;
  const { file, open } = setup(t, { maxBytes: 16 * 1024 * 1024 }, { pageCapBytes: cap });
  const b = open();
  const seqs: number[] = [];
  for (let i = 0; i < 8000; i++) seqs.push(b.record(i % 50 === 0 ? 'alerts' : 'metrics', { i, pad }));
  b.flushSync();
  const s = b.stats();
  t.equal(s.failing, null, 'storage is not failing');
  t.equal(b.notReady(), undefined, 'ready');
  t.ok(s.streams.metrics.evictedBy.full > 0, `evicted for a full disk: ${s.streams.metrics.evictedBy.full}`);
  t.equal(s.streams.alerts.evicted, 0, 'alerts kept');
  checkIdentity(t, s, 'after SQLITE_FULL');
  t.equal(b.committedSeq, seqs.at(-1), 'every accepted record was committed (then kept or counted as evicted)');
  b.stopSync();
  t.ok(statSync(file).size <= cap, `checkpointed file ${statSync(file).size} bytes <= page cap ${cap}`);
});

t.test('SQLITE_FULL with nothing evictable: records wait in memory, readiness says why, they are written once space frees', async (t) => {
  const cap = 128 * 1024;
  const { file, open } = setup(t, { maxBytes: 16 * 1024 * 1024, maxPendingRecords: 100 }, { pageCapBytes: cap });
  const b = open();
  // Fill the file with one stream, then lease all of it: leased records are never evicted.
  let i = 0;
  while (!(b.stats().streams.metrics?.evictedBy.full > 0)) {
    for (let k = 0; k < 100; k++) b.record('metrics', { i: i++, pad });
    b.flushSync();
    if (i > 100_000) throw new Error('the page cap never filled');
  }
  const lease = b.lease(16 * 1024 * 1024, { stream: 'metrics' })!;
  t.equal(lease.count, b.stats().streams.metrics.depth, 'one lease holds the whole stream');
  const waiting: number[] = [];
  for (let k = 0; k < 100; k++) waiting.push(b.record('metrics', { k, pad }));
  t.throws(() => b.flushSync(), { code: 'EDGE_TELEMETRY_BACKLOG' }, 'flush reports that the disk refuses');
  t.match(b.notReady(), /^storage refusing writes: SQLITE_FULL/);
  t.throws(() => b.record('metrics', { over: true }), { code: 'EDGE_TELEMETRY_BACKLOG', message: /100 records wait in memory/ }, 'beyond maxPendingRecords new records are refused, not dropped');
  t.equal(b.ack(lease.id), lease.count, 'the broker acks: space frees');
  await waitFor(() => b.notReady() === undefined, { timeoutMs: 10_000, what: 'the retry to commit the waiting records' });
  const disk = onDisk(file).get('metrics')!;
  t.same(disk, waiting, 'the records that waited are on disk, in order');
  checkIdentity(t, b.stats(), 'after recovery');
});

t.test('a lowered budget: the next start evicts down to it and gives the space back', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'telemetry-bounds-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'telemetry.db');
  let b = new TelemetryBuffer({ dir, config: telemetryConfig({ maxBytes: 4 * 1024 * 1024 }) });
  b.startSync();
  for (let i = 0; i < 8000; i++) b.record(i % 2 ? 'metrics' : 'samples', { i, pad });
  b.stopSync();
  const before = statSync(file).size;
  t.ok(before > 1024 * 1024, `file holds ${before} bytes`);
  b = new TelemetryBuffer({ dir, config: telemetryConfig({ maxBytes: 256 * 1024 }) });
  b.startSync();
  t.teardown(() => b.stopSync());
  const s = b.stats();
  t.ok(s.fileBytes <= 256 * 1024, `file shrank to ${s.fileBytes} bytes (budget ${256 * 1024})`);
  t.ok(s.streams.samples.evictedBy.budget > 0, 'samples evicted for the budget');
  t.ok(s.streams.samples.evictedBy.budget >= s.streams.metrics.evictedBy.budget, 'lower priority first');
  checkIdentity(t, s, 'after lowering the budget');
  b.record('metrics', { after: true });
  b.flushSync();
  t.equal(b.notReady(), undefined, 'and it keeps working');
});

// Bounds of the telemetry buffer with real SQLite files: a burst ten times the disk budget,
// eviction by priority then age, counters that add up, max age and ttl, and a disk that is
// full for real (SQLite's page cap returns SQLITE_FULL), and a small filesystem (a tmpfs
// mounted for the test) that fills up, by the buffer itself or by someone else.
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TelemetryBuffer } from '../agent/telemetry/buffer.js';
import { telemetryConfig } from '../agent/telemetry/defaults.js';
import type { TelemetryBufferOptions, TelemetryConfig, TelemetryStats } from '../agent/telemetry/types.js';
import { waitFor } from './helpers/wait.js';
import { spawnAgent } from './helpers/agent.js';

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
    t.ok(st.depth >= 0 && st.bytes >= 0, `${what}: ${name} depth ${st.depth} and bytes ${st.bytes} are not negative`);
  }
}

/** A tmpfs of sizeKb mounted for this test (root and mount(8)), or why not. */
/**
 * A tmpfs of sizeKb mounted for the test; undefined (and the test reported as skipped, with the
 * reason) where mount is refused: the page-cap tests cover SQLITE_FULL without it.
 */
function smallDisk(t: Test, sizeKb: number): string | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'telemetry-small-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    t.plan(0, `tmpfs mount refused (${String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n')[0]}): this test did not run`);
    return undefined;
  }
  t.teardown(() => {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Leases and acks until the buffer is empty; returns the delivered sequence numbers. */
function drainAll(b: TelemetryBuffer): Set<number> {
  const delivered = new Set<number>();
  for (let l = b.lease(64 * 1024); l; l = b.lease(64 * 1024)) {
    for (const r of l.records) delivered.add(r.seq);
    b.ack(l.id);
  }
  return delivered;
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
  // Most of what was recorded was evicted: that is a warning (on /readyz), not only a counter.
  t.match((b.status() as { warning?: string }).warning, /evicting records: \d+ of \d+ accepted were dropped .*raise telemetry\.maxBytes/, 'the status warns');
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

// The soak's disk-full row: the data dir on a 2 MB filesystem, maxBytes left at 64 MB, a flood
// with nothing draining. The WAL used to fill the disk before its first checkpoint; then even
// the DELETE of an eviction failed, the counters went negative and nothing drained again.
t.test('a 2 MB filesystem and a 64 MB budget: the buffer keeps to the room there is, counts stay exact, all drains', async (t) => {
  const disk = smallDisk(t, 2048);
  if (!disk) return;
  const b = new TelemetryBuffer({ dir: disk, config: telemetryConfig({}) });
  b.startSync();
  t.teardown(() => b.stopSync());
  const seqs: number[] = [];
  const big = 'x'.repeat(1000);
  for (let i = 0; i < 6000; i++) {
    seqs.push(b.record(['samples', 'metrics', 'events'][i % 3], { i, big }));
    if (i % 50 === 49) b.flushSync();
  }
  b.flushSync();
  const s = b.stats();
  t.equal(s.failing, null, 'the disk never refused a write');
  t.ok(s.capacityBytes < s.maxBytes && s.capacityBytes <= 0.4 * 2048 * 1024, `budget in force ${s.capacityBytes} B: a share of the 2 MB filesystem, not maxBytes ${s.maxBytes}`);
  const st = statfsSync(disk);
  t.ok(st.bavail * st.bsize > 256 * 1024, `the filesystem keeps room: ${st.bavail * st.bsize} B free`);
  t.ok(s.evicted > 0, `records evicted for the full disk: ${s.evicted}`);
  t.equal(s.evicted, Object.values(s.streams).reduce((a, x) => a + x.evictedBy.full, 0), 'every eviction has the reason "full"');
  checkIdentity(t, s, 'after the flood');
  const delivered = drainAll(b);
  const end = b.stats();
  t.equal(end.depth, 0, 'the queue drained');
  t.equal(delivered.size, s.depth, `every queued record was delivered (${delivered.size})`);
  t.equal(seqs.filter((q) => !delivered.has(q)).length, end.evicted, 'each accepted record was delivered or counted as evicted');
  checkIdentity(t, end, 'after the drain');
});

// Someone else fills the filesystem: the buffer cannot write, not even a delete. It must say so
// (507), keep exact counts, and pick up where it stopped once there is space again.
t.test('a filesystem filled by someone else: 507 and exact counts while full, recovery and delivery once space frees', async (t) => {
  const disk = smallDisk(t, 2048);
  if (!disk) return;
  const b = new TelemetryBuffer({ dir: disk, config: telemetryConfig({}) });
  b.startSync();
  t.teardown(() => b.stopSync());
  const seqs: number[] = [];
  const big = 'x'.repeat(1000);
  for (let i = 0; i < 300; i++) seqs.push(b.record('metrics', { i, big }));
  b.flushSync();
  const filler = path.join(disk, 'filler');
  const fd = openSync(filler, 'w');
  try {
    for (const chunk = Buffer.alloc(4096, 1); ;) writeSync(fd, chunk);
  } catch (err) {
    t.equal((err as { code?: string }).code, 'ENOSPC', 'the filler took every free block');
  } finally {
    closeSync(fd);
  }
  let refusal: { code?: string; statusCode?: number; message?: string } | undefined;
  for (let i = 0; i < 20_000 && !refusal; i++) {
    try {
      seqs.push(b.record('metrics', { i, big }));
    } catch (err) {
      refusal = err as typeof refusal;
    }
    if (i % 20 === 19) {
      try {
        b.flushSync();
      } catch {
        // the disk refuses; the records wait in memory
      }
    }
  }
  t.equal(refusal?.code, 'EDGE_TELEMETRY_DISK_FULL', 'new records are refused once the disk refuses writes');
  t.equal(refusal?.statusCode, 507, 'as 507 Insufficient Storage');
  t.match(refusal?.message, /disk holding the telemetry buffer is full/, 'with a message that says so');
  const full = b.stats();
  t.equal(full.diskFull, true, 'stats say the disk is full');
  t.match(b.notReady(), /SQLITE_FULL/, 'readiness says why');
  t.equal(full.accepted, seqs.length, 'every record that got a sequence number is counted as accepted');
  checkIdentity(t, full, 'while the disk is full');

  rmSync(filler);
  await waitFor(() => b.notReady() === undefined, { timeoutMs: 15_000, what: 'the retry to commit once space frees' });
  seqs.push(b.record('metrics', { after: true }));
  b.flushSync();
  const back = b.stats();
  checkIdentity(t, back, 'after space returned');
  // One eviction of a twentieth of the budget at most (about 40 records of 1 KB): the retries
  // while the disk was full, and the first commit after, must not evict the queue away.
  t.ok(back.evicted <= 50, `${back.evicted} records evicted for the full disk, of ${back.accepted}`);
  const delivered = drainAll(b);
  const end = b.stats();
  t.equal(end.depth, 0, 'the queue drained');
  t.equal(seqs.filter((q) => !delivered.has(q)).length, end.evicted, `each accepted record was delivered (${delivered.size}) or counted as evicted (${end.evicted})`);
  checkIdentity(t, end, 'after the drain');
});

// The same against the daemon: an HTTP client gets 507 with a sentence, /readyz says why, the
// process stays up, and writes are taken again once space frees.
t.test('the daemon on a filesystem filled by someone else: 507 over HTTP, stays up, takes writes again', async (t) => {
  const disk = smallDisk(t, 2048);
  if (!disk) return;
  const agent = spawnAgent({ dataDir: path.join(disk, 'data') });
  t.teardown(async () => {
    agent.kill('SIGKILL');
    await agent.exited();
  });
  const url = await agent.ready();
  const big = 'x'.repeat(1000);
  const post = (i: number) => fetch(`${url}/v1/telemetry/metrics`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ payload: { i, big } }),
    signal: AbortSignal.timeout(2000),
  }).then(async (r) => ({ status: r.status, body: await r.json() as any }), () => ({ status: 0, body: undefined as any }));
  let taken = 0;
  for (let i = 0; i < 20; i++) taken += (await post(i)).status === 201 ? 1 : 0;
  t.equal(taken, 20, 'taken while there is room');
  const filler = path.join(disk, 'filler');
  const fd = openSync(filler, 'w');
  try {
    for (const chunk = Buffer.alloc(4096, 1); ;) writeSync(fd, chunk);
  } catch {
    // ENOSPC: full
  } finally {
    closeSync(fd);
  }
  let refused: { status: number; body: any } | undefined;
  for (let i = 0, until = Date.now() + 30_000; i < 2000 && !refused && Date.now() < until; i++) {
    const r = await post(i);
    if (r.status !== 201 && r.status !== 0) refused = r; // 0: accepted, its commit waits for space
  }
  t.equal(refused?.status, 507, 'a write it cannot take is answered 507 Insufficient Storage');
  t.equal(refused?.body?.error?.code, 'EDGE_TELEMETRY_DISK_FULL', 'with its code');
  t.match(refused?.body?.error?.message, /disk holding the telemetry buffer is full/, 'with a sentence that says so');
  const ready = await fetch(`${url}/readyz`);
  t.equal(ready.status, 503, '/readyz: not ready');
  t.match(await ready.text(), /SQLITE_FULL/, '/readyz says why');
  const st = await (await fetch(`${url}/v1/telemetry`)).json() as TelemetryStats;
  t.equal(st.diskFull, true, 'GET /v1/telemetry: diskFull');
  checkIdentity(t, st, 'daemon, disk full');
  t.equal(agent.proc.exitCode, null, 'the daemon is still running');
  rmSync(filler);
  await waitFor(async () => (await post(-1)).status === 201, { timeoutMs: 20_000, intervalMs: 500, what: 'a write taken again once space freed' });
  const after = await (await fetch(`${url}/v1/telemetry`)).json() as TelemetryStats;
  t.equal(after.failing, null, 'storage accepts writes again');
  checkIdentity(t, after, 'daemon, after space returned');
});

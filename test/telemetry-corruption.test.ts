// A damaged telemetry database with real files: garbage instead of a database, a page
// overwritten inside a valid one, and a path that cannot be opened at all. The file is moved
// aside with an alert and a fresh one started; sequence numbers keep rising; the agent keeps
// running and /readyz says when storage is not open.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { TelemetryBuffer } from '../agent/telemetry/buffer.js';
import { telemetryConfig } from '../agent/telemetry/defaults.js';
import { waitFor } from './helpers/wait.js';

function tempDir(t: Test): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'telemetry-corrupt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function open(t: Test, dir: string): TelemetryBuffer {
  const b = new TelemetryBuffer({ dir, config: telemetryConfig() });
  b.startSync();
  t.teardown(() => b.stopSync());
  return b;
}

function alertsOf(b: TelemetryBuffer): { seq: number; payload: Record<string, unknown> }[] {
  const l = b.lease(1024 * 1024, { stream: 'alerts' });
  return (l?.records ?? []) as { seq: number; payload: Record<string, unknown> }[];
}

t.test('garbage instead of a database: moved aside byte for byte, a fresh one with an alert', async (t) => {
  const dir = tempDir(t);
  const garbage = randomBytes(64 * 1024);
  writeFileSync(path.join(dir, 'telemetry.db'), garbage);
  const b = open(t, dir);
  t.equal(b.notReady(), undefined, 'ready with a fresh database');
  t.equal(b.stats().recoveries, 1);
  const aside = readdirSync(dir).filter((n) => /^telemetry\.db\.corrupt-[^-]/.test(n) && !n.endsWith('-wal') && !n.endsWith('-shm'));
  t.equal(aside.length, 1, `moved aside as ${aside[0]}`);
  t.ok(readFileSync(path.join(dir, aside[0])).equals(garbage), 'the damaged file is kept unchanged for inspection');
  const alerts = alertsOf(b);
  t.equal(alerts.length, 1, 'one alert');
  t.match(alerts[0].payload, { kind: 'telemetry_database_corrupt', movedTo: path.join(dir, aside[0]), error: /SQLITE_NOTADB|not a database|file is not a database/ });
  const next = b.record('metrics', { after: true });
  t.equal(next, alerts[0].seq + 1, 'recording goes on right after the alert');
});

t.test('a page overwritten inside a valid database: integrity check catches it; sequence numbers keep rising', async (t) => {
  const dir = tempDir(t);
  let b = open(t, dir);
  let last = 0;
  for (let i = 0; i < 5000; i++) last = b.record('metrics', { i, pad: 'x'.repeat(100) });
  b.stopSync();
  const fd = openSync(path.join(dir, 'telemetry.db'), 'r+');
  writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, 4096 * 40);
  closeSync(fd);
  b = open(t, dir);
  t.equal(b.stats().recoveries, 1, 'recovered');
  const [alert] = alertsOf(b);
  t.match(alert.payload, { kind: 'telemetry_database_corrupt', error: /quick_check/, salvagedSeq: last + 1 });
  t.ok(alert.seq > last, `the new database continues above the old sequence numbers (${last} -> ${alert.seq})`);
  t.equal(b.stats().streams.metrics?.depth ?? 0, 0, 'the fresh database starts empty');
  b.stopSync();

  // A second corruption keeps only the newest damaged copy, so a failing card cannot fill up.
  writeFileSync(path.join(dir, 'telemetry.db'), randomBytes(8192));
  b = open(t, dir);
  const copies = readdirSync(dir).filter((n) => n.includes('.corrupt-') && !n.endsWith('-wal') && !n.endsWith('-shm'));
  t.equal(copies.length, 1, `one damaged copy kept (${copies.join(', ')})`);
  const seq = b.record('events', { x: 1 });
  t.ok(seq > alert.seq, 'still rising after the second recovery');
});

t.test('the agent: storage that cannot be opened is "not ready" on /readyz, and ready once it opens', async (t) => {
  const dir = tempDir(t);
  const config = parseConfig({ deviceId: 'dev-tel', dataDir: 'data', health: { port: 0 }, log: { level: 'silent' }, security: { requireSignedPackages: false } }, 'test', dir);
  // A directory where the database file should be: SQLite cannot open it.
  mkdirSync(path.join(dir, 'data', 'telemetry.db'), { recursive: true });
  const agent = new Agent(config);
  t.match(agent.notReady().join('; '), /telemetry: storage not open/, 'not ready before start');
  await agent.start();
  t.teardown(() => agent.stop());
  const res = await fetch(`${agent.url}/readyz`);
  t.equal(res.status, 503, '/readyz 503 while storage is not open');
  const body = (await res.json()) as { reasons: string[] };
  t.match(body.reasons.join('; '), /telemetry: storage not open: .+/, `reason given: ${body.reasons.join('; ')}`);
  t.equal((await fetch(`${agent.url}/healthz`)).status, 200, 'the daemon itself keeps running');

  rmSync(path.join(dir, 'data', 'telemetry.db'), { recursive: true });
  await waitFor(async () => (await fetch(`${agent.url}/readyz`)).status === 200, { timeoutMs: 15_000, what: '/readyz to turn 200 after the retry opens the database' });
  agent.telemetry.record('metrics', { ok: true });
  const metrics = await (await fetch(`${agent.url}/metrics`)).text();
  t.match(metrics, /edge_telemetry_queue_records\{[^}]*stream="metrics"[^}]*\} 1/, 'queue depth on /metrics');
  t.match(metrics, /edge_telemetry_storage_open\{[^}]*\} 1/, 'storage open on /metrics');
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
  t.equal(promtool.error, undefined, 'promtool runs');
  t.notMatch(`${promtool.stdout}${promtool.stderr}`, /edge_telemetry/, `promtool has no complaint about edge_telemetry_* metrics`);
});

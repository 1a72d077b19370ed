// The DriftMonitor inside a real agent: windows close by count and by time, reports land in the
// real SQLite telemetry buffer (streams "drift" and "alerts"), GET /v1/drift serves the latest
// per model, /metrics carries the scores, and bad input never breaks inference.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { buildReference, observe, Profile, type DriftReport, type DriftAlert } from '../agent/drift/index.js';
import Fastify from 'fastify';
import { pino } from 'pino';
import { prom } from '../agent/metrics.js';
import { DriftMonitor } from '../agent/drift/index.js';
import { waitFor } from './helpers/wait.js';
import { rng, tabularBatch, TABULAR_SPEC } from './drift-fixtures.js';

const reference = buildReference(Array.from({ length: 20 }, (_, i) => ({ inputs: tabularBatch(rng(500 + i), 250) })), TABULAR_SPEC);

async function startAgent(t: { teardown(fn: () => unknown): void }, drift: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Agent> {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-drift-'));
  const config = parseConfig({ deviceId: 'dev-d', dataDir: 'data', health: { port: 0 }, log: { level: 'silent' }, security: { requireSignedPackages: false }, drift, ...extra }, 'test', dir);
  const agent = new Agent(config);
  await agent.start();
  t.teardown(async () => {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return agent;
}

function records(agent: Agent, stream: string): unknown[] {
  const out: unknown[] = [];
  for (;;) {
    const lease = agent.telemetry.lease(4 * 1024 * 1024, { stream });
    if (!lease) return out;
    out.push(...lease.records.map((r) => r.payload));
    agent.telemetry.ack(lease.id);
  }
}

t.test('a full window of shifted data: report and alert in the buffer, /v1/drift and /metrics', async (t) => {
  const agent = await startAgent(t, { windowInferences: 400, minWindowSize: 50, sampleEvery: 1 });
  agent.drift.attach('tab', '1.0.0', reference);
  const r = rng(1);
  // 300 rows from the reference distribution, then the window is still open
  for (let i = 0; i < 3; i++) agent.drift.observe('tab', '1.0.0', tabularBatch(r, 100), {});
  t.same(records(agent, 'drift'), [], 'no report before the window is full');
  // the last 100 strongly shifted on most features: the window drifts
  const shifted = tabularBatch(r, 100, { meanA: 6, scaleB: 5, newColor: 0.9 });
  const x = shifted.x.data as Float32Array;
  for (let i = 0; i < 100; i++) x[i * 4 + 2] += 10;
  observe('tab', '1.0.0', shifted, {}, { latencyMs: 3 }); // through the module-level hook
  await agent.telemetry.flush();
  const drift = records(agent, 'drift') as DriftReport[];
  t.equal(drift.length, 1, 'one report on stream drift');
  const rep = drift[0];
  t.match(rep, { format: 'edge-drift-report/1', deviceId: 'dev-d', model: 'tab', version: '1.0.0', window: { seq: 1, size: 400, inferences: 4, closedBy: 'count' } });
  t.equal(rep.verdict, 'alert');
  t.same(rep.dataset.driftedFeatures.sort(), ['a', 'b', 'c', 'color']);
  t.notOk(rep.features.find((f) => f.name === 'd')!.verdict === 'drift', 'd was not shifted');
  const profile = Profile.decode(rep.profile);
  t.equal(profile.rows, 400, 'the window profile travels with the report and decodes');
  const alerts = records(agent, 'alerts') as DriftAlert[];
  t.equal(alerts.length, 1, 'alert-level verdict also on stream alerts');
  t.match(alerts[0], { kind: 'drift', model: 'tab', version: '1.0.0', dataset: { drifted: true } });
  t.notOk('profile' in alerts[0], 'the alert is small: no profile');

  const res = await fetch(`${agent.url}/v1/drift`);
  t.equal(res.status, 200);
  const body = await res.json() as { models: Record<string, DriftReport>; monitored: unknown[] };
  t.equal(body.models.tab.window.seq, 1);
  t.equal(body.models.tab.verdict, 'alert');
  t.equal(body.models.tab.profile, undefined, 'profile left out unless ?profile=1');
  const withProfile = await (await fetch(`${agent.url}/v1/drift?model=tab&profile=1`)).json() as { models: Record<string, DriftReport> };
  t.equal(withProfile.models.tab.profile.rows, 400);
  const missing = await fetch(`${agent.url}/v1/drift?model=nope`);
  t.equal(missing.status, 404);
  t.match(await missing.json(), { error: { code: 'EDGE_NOT_FOUND', message: /no drift monitoring for model nope/ } });

  const metrics = await (await fetch(`${agent.url}/metrics`)).text();
  t.match(metrics, /edge_drift_verdict\{model="tab",version="1.0.0",device="dev-d"\} 2/, 'verdict gauge: 2 = alert');
  t.match(metrics, /edge_drift_score\{model="tab",version="1.0.0",feature="a",statistic="psi",device="dev-d"\} [0-9.]+/, 'per-feature scores');
  const psiA = Number(/edge_drift_score\{model="tab",version="1.0.0",feature="a",statistic="psi"[^}]*\} ([0-9.e+-]+)/.exec(metrics)![1]);
  t.ok(Math.abs(psiA - rep.features.find((f) => f.name === 'a')!.stats.psi) < 1e-9, 'the gauge holds the report\'s value');
  t.match(metrics, /edge_drift_windows_total\{model="tab",version="1.0.0",verdict="alert",device="dev-d"\} 1/);
});

t.test('windows close by time; empty windows stay silent; bad input is counted, not thrown', async (t) => {
  const agent = await startAgent(t, { windowInferences: 100_000, windowSeconds: 1, minWindowSize: 10, sampleEvery: 1 });
  agent.drift.attach('tab', '1', reference);
  const r = rng(2);
  agent.drift.observe('tab', '1', tabularBatch(r, 60), {});
  // inputs without the declared tensors: NaN = missing, no exception
  agent.drift.observe('tab', '1', { other: { dtype: 'float32', shape: [1, 1], data: new Float32Array(1) } }, {});
  agent.drift.observe('unknown-model', '1', tabularBatch(r, 5), {});
  const rep = await waitFor(() => agent.drift.latest().tab, { timeoutMs: 5000, what: 'the time-closed window' });
  t.equal(rep.window.closedBy, 'time');
  t.equal(rep.window.size, 61, 'batch items profiled, the bad inference as one missing row');
  t.equal(rep.features.find((f) => f.name === 'a')!.missing, 1);
  t.not(rep.verdict, 'alert', 'unshifted data: no alert');
  t.ok(rep.features.every((f) => f.verdict !== 'drift'), 'and no feature drifts');
  await agent.telemetry.flush();
  t.equal(records(agent, 'drift').length, 1);
  t.equal(records(agent, 'alerts').length, 0, 'no alert for an ok window');
});

t.test('closing by time with a clock of our own: empty windows restart silently', async (t) => {
  const config = parseConfig({ deviceId: 'dev-c', dataDir: 'data', log: { level: 'silent' }, drift: { windowSeconds: 60, minWindowSize: 5, sampleEvery: 1 } }, 'test', tmpdir());
  let now = 1_000_000;
  const recorded: [string, unknown][] = [];
  const http = Fastify();
  const monitor = new DriftMonitor({ config, log: pino({ level: 'silent' }), metrics: new prom.Registry(), http, startedAt: now }, { record: (s, p) => recorded.push([s, p]), now: () => now });
  await monitor.start();
  t.teardown(async () => {
    await monitor.stop();
    await http.close();
  });
  monitor.attach('tab', '1', reference);
  now += 61_000;
  monitor.closeExpired();
  t.same(recorded, [], 'an empty window is not reported');
  monitor.observe('tab', '1', tabularBatch(rng(4), 20), {});
  now += 59_000;
  monitor.closeExpired();
  t.same(recorded, [], 'not yet: the window restarted when it was found empty');
  now += 2_000;
  monitor.closeExpired();
  t.equal(recorded.length, 1);
  t.match(recorded[0], ['drift', { window: { closedBy: 'time', size: 20, start: new Date(1_061_000).toISOString(), end: new Date(1_122_000).toISOString() } }]);
});

t.test('sampleEvery: one inference in N is profiled, all are counted', async (t) => {
  const agent = await startAgent(t, { windowInferences: 50, minWindowSize: 10, sampleEvery: 4 });
  agent.drift.attach('tab', '1', reference);
  const r = rng(6);
  for (let i = 0; i < 199; i++) agent.drift.observe('tab', '1', tabularBatch(r, 1), {});
  t.equal(agent.drift.latest().tab, undefined, '49 profiled: the window is not full yet');
  agent.drift.observe('tab', '1', tabularBatch(r, 1), {});
  const rep = agent.drift.latest().tab;
  t.match(rep.window, { size: 50, inferences: 200, closedBy: 'count' });
});

t.test('a report too large for the buffer still goes out, without its profile', async (t) => {
  const agent = await startAgent(t, { windowInferences: 400, minWindowSize: 10, sampleEvery: 1 }, { telemetry: { maxRecordBytes: 8000 } });
  agent.drift.attach('tab', '1', reference);
  agent.drift.observe('tab', '1', tabularBatch(rng(12), 400), {});
  const full = agent.drift.latest().tab;
  t.ok(Buffer.byteLength(JSON.stringify(full)) > 8000, `the full report (${Buffer.byteLength(JSON.stringify(full))} bytes) is larger than the record limit`);
  t.ok(Buffer.byteLength(JSON.stringify({ ...full, profile: undefined })) < 8000, `the report without its profile fits (${Buffer.byteLength(JSON.stringify({ ...full, profile: undefined }))} bytes)`);
  await agent.telemetry.flush();
  const sent = records(agent, 'drift') as DriftReport[];
  t.equal(sent.length, 1, 'a report was recorded');
  t.equal(sent[0].profile, undefined, 'without the profile');
  t.match(sent[0].profileOmitted, /refused by the telemetry buffer/);
  t.same(sent[0].features.map((f) => f.verdict), full.features.map((f) => f.verdict), 'with the verdicts');
  t.equal(agent.drift.latest().tab.profile.rows, 400, 'the local report keeps its profile');
});

t.test('feedback route and bad references give clear errors', async (t) => {
  const agent = await startAgent(t, {});
  agent.drift.attach('tab', '1', reference);
  const bad = await fetch(`${agent.url}/v1/drift/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tab' }) });
  t.equal(bad.status, 400);
  t.match(await bad.json(), { error: { code: 'EDGE_BAD_REQUEST', message: /"correct": true\|false/ } });
  const ok = await fetch(`${agent.url}/v1/drift/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tab', correct: true }) });
  t.equal(ok.status, 200);
  const unknown = await fetch(`${agent.url}/v1/drift/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'nope', correct: false }) });
  t.equal(unknown.status, 404);
  t.throws(() => agent.drift.attach('x', '1', { format: 'something-else' }), { code: 'EDGE_DRIFT_SPEC_INVALID', message: /edge-drift-reference\/1/ });
});

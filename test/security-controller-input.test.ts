// Hostile documents at the controller (issue 26, item 1): a drift record whose payload is
// `null`, a status with `models: [null]` and their relatives, sent by a real agent's local
// API and straight onto the device topics, reach a real `edge-fleet serve` with its dashboard
// open. Each is refused at ingest with its reason (table `rejected`); rows an older version
// stored in the database unchecked are skipped by every view; the process keeps running and
// keeps storing and acking good telemetry.
import t from 'tap';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import mqtt from 'mqtt';
import { encodeBatch, encodeRawBatch } from '../protocol/telemetry-batch.js';
import { FleetStore } from '../controller/store.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { root, spawnAgent } from './helpers/agent.js';
import { killOnExit } from './helpers/cleanup.js';
import { WaitAbort, waitFor } from './helpers/wait.js';
import { tempDir } from './fleet-support.js';

t.setTimeout(120_000);

const goodDrift = (model: string, verdict = 'ok') => ({
  format: 'edge-drift-report/1', deviceId: 'x', model, version: '1.0.0', verdict,
  window: { seq: 1, start: '2026-01-01T00:00:00Z', end: '2026-01-01T00:01:00Z', size: 10, inferences: 10, closedBy: 'count' },
  features: [{ name: 'pixel_mean', verdict, score: 0.1, reasons: [] }],
});

// Drift payloads that are not drift reports: each must be refused with a reason.
const badDrift: [string, unknown][] = [
  ['null', null],
  ['a number', 42],
  ['an array', [1, 2]],
  ['features: [null]', { ...goodDrift('m'), features: [null] }],
  ['features: "x"', { ...goodDrift('m'), features: 'x' }],
  ['model: 5', { ...goodDrift('m'), model: 5 }],
  ['window: null', { ...goodDrift('m'), window: null }],
  ['no verdict', { model: 'm', version: '1', window: {}, features: [] }],
  ['a feature without a name', { ...goodDrift('m'), features: [{ score: 3 }] }],
];

const badStatus: [string, string][] = [
  ['models: [null]', JSON.stringify({ v: 1, state: 'online', models: [null] })],
  ['models: "x"', JSON.stringify({ v: 1, state: 'online', models: 'x' })],
  ['groups: [1]', JSON.stringify({ v: 1, state: 'online', groups: [1] })],
  ['state: {}', JSON.stringify({ v: 1, state: {} })],
  ['null', 'null'],
];

const badReported: [string, string][] = [
  ['models: [null]', JSON.stringify({ v: 1, models: [null] })],
  ['models missing', JSON.stringify({ v: 1 })],
  ['a model without state', JSON.stringify({ v: 1, models: [{ name: 'm', version: '1' }] })],
];

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

t.test('malformed documents through ingest and every view leave edge-fleet serve running', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const { dir, remove } = tempDir('edge-ctl-input-');
  t.teardown(remove);
  const db = path.join(dir, 'fleet.db');

  // Rows as an older, unchecking version stored them.
  const old = new FleetStore(db);
  const now = Date.now();
  const insDevice = old.db.prepare('INSERT INTO devices (device_id, state, status_json, groups_json, first_seen, last_seen, reported_json) VALUES (?, ?, ?, ?, ?, ?, ?)');
  insDevice.run('old-null-models', 'online', '{"models":[null]}', '[null]', now, now, '{"models":[null]}');
  insDevice.run('old-bad-json', 'online', '{not json', 'not json', now, now, '[');
  insDevice.run('old-status-null', 'online', 'null', '[]', now, now, 'null');
  const insDrift = old.db.prepare('INSERT INTO drift (device_id, seq, ts, report_json) VALUES (?, ?, ?, ?)');
  insDrift.run('old-null-models', 1, now, 'null');
  insDrift.run('old-null-models', 2, now + 1, JSON.stringify({ ...goodDrift('m'), features: [null] }));
  insDrift.run('old-bad-json', 1, now, '{');
  insDrift.run('old-status-null', 1, now, '7');
  old.db.prepare('INSERT INTO commands (id, device_id, name, reply_json) VALUES (?, ?, ?, ?)').run('c1', 'old-bad-json', 'ping', '{');
  old.close();

  const bin = path.join(root, 'dist/controller/cli.js');
  const serve = spawn(process.execPath, [bin, 'serve', '--broker', broker.url, '--db', db, '--id', 'ctl-input', '--share', 'none', '--http', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(() => serve.kill('SIGKILL'));
  t.teardown(() => { if (serve.exitCode === null) serve.kill('SIGKILL'); });
  let out = '';
  let errText = '';
  serve.stdout.on('data', (d: Buffer) => (out += d.toString()));
  serve.stderr.on('data', (d: Buffer) => (errText += d.toString()));
  const alive = (): void => {
    if (serve.exitCode !== null || serve.signalCode !== null) throw new WaitAbort(`edge-fleet serve exited (${serve.exitCode ?? serve.signalCode}): ${errText.slice(-2000)}`);
  };
  const ready = await waitFor(() => { alive(); const l = out.split('\n').find((x) => x.includes('"ready":true')); return l ? JSON.parse(l) as { dashboard: string } : undefined; },
    { timeoutMs: 30_000, what: 'edge-fleet serve ready' });
  const dash = ready.dashboard;

  // The dashboard is open: an event stream that pushes the views every second.
  const events: string[] = [];
  const sse = http.get(`${dash}/api/events`, (res) => res.on('data', (d: Buffer) => events.push(d.toString())));
  sse.on('error', () => undefined);
  t.teardown(() => sse.destroy());
  await waitFor(() => events.join('').includes('event: update'), { what: 'the first dashboard update' });

  const views = async (when: string): Promise<void> => {
    alive();
    const devices = await get(`${dash}/api/devices`);
    t.equal(devices.status, 200, `${when}: /api/devices answers 200 (${devices.body.slice(0, 200)})`);
    for (const d of JSON.parse(devices.body) as { deviceId: string }[]) {
      const one = await get(`${dash}/api/devices/${encodeURIComponent(d.deviceId)}`);
      t.equal(one.status, 200, `${when}: /api/devices/${d.deviceId} answers 200 (${one.body.slice(0, 200)})`);
    }
    for (const route of ['/api/drift', '/api/rollouts', '/api/telemetry/volume', '/']) {
      const r = await get(`${dash}${route}`);
      t.equal(r.status, 200, `${when}: ${route} answers 200 (${r.body.slice(0, 200)})`);
    }
  };
  await views('with rows an older version stored');

  // A real agent: any local app can post a drift record with a null payload.
  const agent = spawnAgent({
    deviceId: 'pi-hostile',
    security: { requireSignedPackages: false },
    mqtt: { url: broker.url, reconnectMinMs: 50, reconnectMaxMs: 500, keepaliveSeconds: 5 },
  });
  t.teardown(() => agent.kill('SIGKILL'));
  const agentUrl = await agent.ready();
  const post = async (stream: string, body: unknown): Promise<number> => (await fetch(`${agentUrl}/v1/telemetry/${stream}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  })).status;
  t.equal(await post('drift', { payload: null }), 201, 'the agent takes the record (its API does not know what "drift" should hold)');
  t.equal(await post('drift', { payload: { ...goodDrift('m'), features: [null] } }), 201, 'and one with features: [null]');
  t.equal(await post('drift', { payload: goodDrift('from-agent', 'warn') }), 201, 'and a good drift report');

  // Straight onto the device topics, as a device (or anyone with publish rights there) can.
  const dev = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'hostile-dev', reconnectPeriod: 0 });
  t.teardown(() => dev.endAsync());
  let seq = 100;
  for (const [what, payload] of badDrift) {
    seq++;
    await dev.publishAsync('edge/v1/pi-wire/telemetry/drift', encodeBatch('drift', [{ seq, ts: Date.now(), payload }]), { qos: 1 });
    t.comment(`sent drift ${what}`);
  }
  // A batch whose good records are stored although one of its records is refused.
  await dev.publishAsync('edge/v1/pi-wire/telemetry/drift', encodeBatch('drift', [
    { seq: 200, ts: Date.now(), payload: goodDrift('wire', 'alert') },
    { seq: 201, ts: Date.now(), payload: null },
  ]), { qos: 1 });
  for (const [, payload] of badStatus) await dev.publishAsync('edge/v1/pi-wire/status', payload, { qos: 1, retain: true });
  await dev.publishAsync('edge/v1/pi-wire/status', JSON.stringify({ v: 1, state: 'online', models: [{ name: 'wire', version: '1.0.0' }] }), { qos: 1, retain: true });
  for (const [, payload] of badReported) await dev.publishAsync('edge/v1/pi-wire/models/reported', payload, { qos: 1 });
  await dev.publishAsync('edge/v1/pi-wire/cmd/res', JSON.stringify({ id: 5, ok: 'yes' }), { qos: 1 });
  // A batch whose header names another stream than its topic.
  await dev.publishAsync('edge/v1/pi-wire/telemetry/metrics', encodeBatch('drift', [{ seq: 300, ts: Date.now(), payload: null }]), { qos: 1 });
  // A payload nested too deeply to store (JSON.parse takes it, JSON.stringify overflows).
  const deep = 200_000;
  await dev.publishAsync('edge/v1/pi-wire/telemetry/events', encodeRawBatch('events', '', [{ seq: 400, ts: Date.now(), json: '['.repeat(deep) + ']'.repeat(deep) }]), { qos: 1 });
  // A good batch last: it is stored, so everything before it was handled.
  await dev.publishAsync('edge/v1/pi-wire/telemetry/metrics', encodeBatch('metrics', [{ seq: 1, ts: Date.now(), payload: { ok: 1 } }]), { qos: 1 });

  const store = new FleetStore(db);
  t.teardown(() => store.close());
  const rejected = (): { deviceId: string | null; topic: string; reason: string }[] => store.rejected();
  const expected = badDrift.length + 1 + badStatus.length + badReported.length + 1 + 1 + 1 + 2; // + the agent's two
  await waitFor(() => { alive(); return rejected().length >= expected && store.telemetry('pi-wire', { stream: 'metrics' }).length === 1 && store.device('pi-wire'); },
    { timeoutMs: 30_000, what: () => `${expected} rejections (have ${rejected().length})` });
  const reasons = rejected().map((r) => `${r.deviceId} ${r.topic}: ${r.reason}`);
  t.comment(reasons.join('\n'));
  t.ok(reasons.some((r) => /pi-hostile .*drift: record \d+: drift document is invalid: \(top level\) must be object/.test(r)), 'the agent\'s null drift record is refused, saying what was expected');
  t.ok(reasons.some((r) => /pi-hostile .*features\/0 must be object/.test(r)), 'features: [null] is refused, naming the field');
  t.ok(reasons.some((r) => /pi-wire .*status: status document is invalid: \/models\/0 must be object/.test(r)), 'a status with models: [null] is refused');
  t.ok(reasons.some((r) => /pi-wire .*reported: reported document is invalid/.test(r)), 'a bad reported document is refused');
  t.ok(reasons.some((r) => /cmd\/res: command reply document is invalid/.test(r)), 'a bad command reply is refused');
  t.ok(reasons.some((r) => /header names stream "drift", the topic "metrics"/.test(r)), 'a batch whose header does not match its topic is refused');
  t.equal(rejected().filter((r) => /record 201/.test(r.reason)).length, 1, 'the bad record of a mixed batch is refused alone');
  t.ok(rejected().some((r) => r.topic.endsWith('/telemetry/events')), 'a batch nested too deeply to store is refused (counted), not silently dropped');
  await waitFor(() => store.driftReports().some((r) => r.report.model === 'wire') && store.driftReports().some((r) => r.report.model === 'from-agent'),
    { timeoutMs: 15_000, what: 'the good drift reports stored' });
  t.equal(store.driftReports().length, 2, 'only the two good drift reports are read back (the old bad rows are skipped)');

  await waitFor(() => events.join('').includes('"wire"'), { timeoutMs: 10_000, what: 'the open dashboard to show the new report' });
  await views('after the hostile documents');
  const devs = JSON.parse((await get(`${dash}/api/devices`)).body) as { deviceId: string; drift: { verdict: string } }[];
  t.equal(devs.find((d) => d.deviceId === 'pi-wire')?.drift.verdict, 'alert', 'the good report still counts in the device summary');

  // A restart with all of it in the database: the views still answer.
  serve.kill('SIGTERM');
  await new Promise((r) => serve.once('exit', r));
  t.equal(serve.exitCode, 0, 'serve was running until told to stop, and stops cleanly');
  const again = spawn(process.execPath, [bin, 'serve', '--broker', broker.url, '--db', db, '--id', 'ctl-input', '--share', 'none', '--http', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(() => again.kill('SIGKILL'));
  t.teardown(() => { if (again.exitCode === null) again.kill('SIGKILL'); });
  let out2 = '';
  again.stdout.on('data', (d: Buffer) => (out2 += d.toString()));
  const ready2 = await waitFor(() => { const l = out2.split('\n').find((x) => x.includes('"ready":true')); return l ? JSON.parse(l) as { dashboard: string } : undefined; },
    { timeoutMs: 30_000, what: 'edge-fleet serve ready again' });
  for (const route of ['/api/devices', '/api/devices/pi-wire', '/api/devices/old-null-models', '/api/drift']) {
    const r = await get(`${ready2.dashboard}${route}`);
    t.equal(r.status, 200, `after a restart: ${route} answers 200`);
  }
  again.kill('SIGTERM');
  await new Promise((r) => again.once('exit', r));
});

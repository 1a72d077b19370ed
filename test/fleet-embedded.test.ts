// The single-machine fleet: `edge-fleet serve --broker embedded` (aedes, MQTT 3.1.1 only) as
// a real child process, an agent that asks for MQTT 5 and falls back to 3.1.1, and the
// edge-fleet commands an operator types: devices, cmd, telemetry, publish, deploy, drift.
import t from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './helpers/ports.js';
import { FleetStore } from '../controller/store.js';
import { waitFor, WaitAbort } from './helpers/wait.js';
import { SERVING, startAgent, tempDir } from './fleet-support.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin/edge-fleet.js');

// Asynchronous on purpose: the agent answering `cmd` runs in this process.
function fleet(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

async function json<T>(args: string[]): Promise<T> {
  const r = await fleet([...args, '--json']);
  if (r.status !== 0) throw new Error(`edge-fleet ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

t.test('embedded broker, MQTT 3.1.1 fallback and the edge-fleet commands', async (t) => {
  const work = tempDir('edge-fleet-embedded-');
  t.teardown(() => work.remove());
  const db = path.join(work.dir, 'fleet.db');
  const port = await freePort();
  const serve = spawn(process.execPath, [bin, 'serve', '--broker', 'embedded', '--port', String(port), '--db', db], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  serve.stdout.on('data', (d) => (out += d));
  serve.stderr.on('data', (d) => (out += d));
  t.teardown(() => { if (serve.exitCode === null) serve.kill('SIGKILL'); });
  await waitFor(() => {
    if (serve.exitCode !== null) throw new WaitAbort(`edge-fleet serve exited: ${out}`);
    return out.includes('"ready":true');
  }, { timeoutMs: 30_000, what: () => `edge-fleet serve to be ready (${out})` });
  const url = `mqtt://127.0.0.1:${port}`;
  // Polling reads the database directly; each edge-fleet command runs once for its assertions.
  let opened: FleetStore | undefined;
  const store = (): FleetStore => (opened ??= new FleetStore(db));
  t.teardown(() => opened?.close());

  const a = await startAgent(url, 'emb-dev', { mqtt: { protocolVersion: 5 } });
  t.teardown(() => a.stop());
  t.equal(a.link.protocolVersion, 4, 'the agent fell back to MQTT 3.1.1');

  await t.test('devices and cmd', async (t) => {
    await waitFor(() => store().device('emb-dev')?.state === 'online', { timeoutMs: 20_000, what: 'emb-dev online in the database' });
    const devices = await json<{ deviceId: string; state: string; status: { mqtt: { fellBack: boolean } } }[]>(['devices', '--db', db]);
    t.equal(devices.find((d) => d.deviceId === 'emb-dev')!.status.mqtt.fellBack, true, 'its status says it fell back');
    const table = await fleet(['devices', '--db', db]);
    t.match(table.stdout, /DEVICE\s+STATE[\s\S]*emb-dev\s+online/, `a readable table on a terminal:\n${table.stdout}${table.stderr}`);

    const reply = await json<{ id: string; ok: boolean; result: { pong: boolean } }>(['cmd', 'emb-dev', 'ping', '--broker', url, '--db', db]);
    t.match(reply, { ok: true, result: { pong: true } }, 'ping over 3.1.1 (id in the payload, fixed reply topic)');
    const bad = await fleet(['cmd', 'emb-dev', 'nope', '--broker', url, '--db', db]);
    t.equal(bad.status, 2, 'an error reply exits 2');
    t.match(bad.stderr, /EDGE_FLEET_UNKNOWN_COMMAND/);
    const badArgs = await fleet(['cmd', 'emb-dev', 'ping', '--args', '[1]', '--broker', url]);
    t.not(badArgs.status, 0);
    t.match(badArgs.stderr, /expected a JSON object/, 'bad --args is refused before sending');
  });

  await t.test('telemetry and drift', async (t) => {
    for (let i = 0; i < 20; i++) a.agent.telemetry.record('metrics', { i });
    // A drift report as the agent's drift monitor writes it (edge-drift-report/1), minus the profile.
    a.agent.telemetry.record('drift', {
      format: 'edge-drift-report/1', deviceId: 'emb-dev', model: 'digits', version: '1.0.0',
      window: { seq: 1, start: new Date(Date.now() - 60_000).toISOString(), end: new Date().toISOString(), size: 64, inferences: 64, closedBy: 'count' },
      verdict: 'warn', dataset: { drifted: true, share: 0.5, driftedFeatures: ['mean'], inputFeatures: 2 }, prediction: { drifted: false, driftedFeatures: [] },
      alpha: { ks: 0.01, chiSquare: 0.01 }, features: [{ name: 'mean', verdict: 'warn', score: 0.4 }], events: [],
    });
    await waitFor(() => store().telemetrySummary('emb-dev').find((x) => x.stream === 'metrics' && x.records === 20) && store().telemetrySummary('emb-dev').find((x) => x.stream === 'drift'),
      { timeoutMs: 20_000, what: 'the records in the controller database' });
    const summary = await json<{ stream: string; records: number }[]>(['telemetry', 'emb-dev', '--db', db]);
    t.same(summary.map((x) => [x.stream, x.records]), [['drift', 1], ['metrics', 20]], 'per-stream summary from edge-fleet telemetry');
    t.ok(summary, 'per-stream summary');
    const rows = await json<{ seq: number; payload: { i: number } }[]>(['telemetry', 'emb-dev', '--db', db, '--stream', 'metrics', '--limit', '5']);
    t.same(rows.map((r) => r.payload.i), [15, 16, 17, 18, 19], 'the last records of one stream');
    const drift = await fleet(['drift', '--db', db, '--json']);
    t.equal(drift.status, 0, drift.stderr);
    t.match(drift.stdout, /digits[\s\S]*emb-dev/, `edge-fleet drift shows the stored report: ${drift.stdout}`);
  });

  await t.test('publish and deploy over 3.1.1', async (t) => {
    const pkg = path.join(work.dir, 'digits-1.0.1');
    cpSync(path.join(root, 'models/digits-fp32'), pkg, { recursive: true });
    const mf = JSON.parse(readFileSync(path.join(pkg, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    mf.version = '1.0.1';
    writeFileSync(path.join(pkg, 'manifest.json'), JSON.stringify(mf, null, 2));
    const pub = await json<{ name: string; version: string; sha256: string }>(['publish', pkg, '--db', db]);
    t.match(pub, { name: 'digits', version: '1.0.1' });
    const dep = await fleet(['deploy', 'digits@1.0.1', '--device', 'emb-dev', '--broker', url, '--db', db]);
    t.equal(dep.status, 0, dep.stderr);
    await waitFor(() => ((store().device('emb-dev')?.reported as { models: { version: string; state: string }[] } | null)?.models ?? []).some((m) => m.version === '1.0.1' && SERVING.test(m.state)),
      { timeoutMs: 60_000, what: () => `digits 1.0.1 active (agent: ${JSON.stringify(a.link.modelSync?.reports())})` });
    t.pass('reported active');
    t.equal(a.agent.models.list().find((m) => m.name === 'digits')?.version, '1.0.1', 'the runtime serves it');
    const missing = await fleet(['deploy', 'digits@9.9.9', '--device', 'emb-dev', '--broker', url, '--db', db]);
    t.not(missing.status, 0);
    t.match(missing.stderr, /not published \(published: digits@1\.0\.1\)/, 'an unknown version is refused with what is published');
  });

  serve.kill('SIGTERM');
  await new Promise((r) => serve.once('exit', r));
  t.equal(serve.exitCode, 0, 'serve stops cleanly on SIGTERM');
});

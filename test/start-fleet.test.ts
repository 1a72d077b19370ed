// `npm start`, the single-machine fleet, as a user runs it: the script in a child process
// (embedded broker, controller, dashboard, three agents with a workload), driven only through
// the edge-fleet command line and HTTP. It demonstrates a canary rollout that passes every
// stage, and a bad version that the canary rolls back while the controller halts the rollout.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { root } from './helpers/agent.js';
import { killOnExit } from './helpers/cleanup.js';
import { waitFor, WaitAbort } from './helpers/wait.js';

interface Ready {
  ready: true;
  broker: string;
  db: string;
  dashboard: string;
  devices: { id: string; url: string }[];
  published: string[];
}
interface StageView { percent: number; devices: { id: string; state: string; version?: string; reason?: string }[] }
interface RolloutView { id: string; state: string; reason?: string; stages: StageView[] }

const fleetCli = path.join(root, 'bin/edge-fleet.js');

function fleet(...args: string[]): string {
  const r = spawnSync(process.execPath, [fleetCli, ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`edge-fleet ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

async function status(db: string, id: string): Promise<RolloutView> {
  return (JSON.parse(fleet('rollout', 'status', id, '--db', db, '--json')) as RolloutView[])[0]!;
}

async function servedVersion(url: string): Promise<string> {
  const res = await fetch(`${url}/v1/models`);
  const body = await res.json() as { models: { name: string; version: string }[] };
  return body.models.find((m) => m.name === 'digits')!.version;
}

t.test('npm start: three devices, a canary rollout to 100%, and a bad version halted at its canary', async (t) => {
  const home = mkdtempSync(path.join(tmpdir(), 'edge-start-fleet-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start-fleet.ts', '--home', home, '--any-port', '--json', '--devices', '3'], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EDGE_LOG_LEVEL: 'warn' },
  });
  killOnExit(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  let exited: number | null | undefined;
  child.on('exit', (code) => { exited = code; });
  t.teardown(() => { if (exited === undefined) child.kill('SIGKILL'); });

  const ready = await waitFor(() => {
    if (exited !== undefined) throw new WaitAbort(`npm start exited ${exited}: ${stderr}`);
    const line = stdout.split('\n').find((l) => l.startsWith('{"ready":true'));
    return line && stdout.includes('Ctrl-C stops everything.') ? JSON.parse(line) as Ready : undefined;
  }, { timeoutMs: 120_000, what: 'the fleet to start' });
  t.equal(ready.devices.length, 3, 'three agents');
  t.match(stdout, /A fleet of 3 is running on this machine/);
  for (const d of ready.devices) {
    const res = await fetch(`${d.url}/healthz`);
    t.equal(res.status, 200, `${d.id} answers /healthz`);
  }
  const initial = await servedVersion(ready.devices[0]!.url);
  const int8 = ready.published.find((p) => p.startsWith('digits@') && !p.includes('nan') && p !== `digits@${initial}`)!;
  t.ok(int8, `a second digits version is published (${ready.published.join(', ')})`);
  const int8Version = int8.split('@')[1]!;
  // Every device has reported to the controller (rollouts need group members).
  await waitFor(() => {
    const devs = JSON.parse(fleet('devices', '--db', ready.db, '--json')) as { deviceId: string }[];
    return ready.devices.every((d) => devs.some((x) => x.deviceId === d.id));
  }, { timeoutMs: 60_000, intervalMs: 500, what: 'the controller to know the three devices' });

  // A good version: a canary first, then the rest; every device commits it.
  const good = JSON.parse(fleet('rollout', int8, '--group', 'local', '--stages', '1,100', '--db', ready.db, '--json')) as { id: string };
  const done = await waitFor(async () => {
    const s = await status(ready.db, good.id);
    if (s.state === 'halted' || s.state === 'halting') throw new WaitAbort(`the good rollout halted: ${s.reason}`);
    return s.state === 'completed' ? s : undefined;
  }, { timeoutMs: 180_000, intervalMs: 1000, what: `rollout of ${int8} to complete` });
  const canaries = done.stages[0]!.devices;
  t.ok(canaries.length >= 1 && canaries.length < 3, `the first stage is a canary (${canaries.map((d) => d.id).join(', ')})`);
  t.equal(done.stages[1]!.devices.length + canaries.length, 3, 'the last stage took the others');
  for (const d of ready.devices) t.equal(await servedVersion(d.url), int8Version, `${d.id} serves ${int8}`);

  // A bad version (NaN outputs): the canary rolls itself back, the rollout halts at stage 1,
  // no other device is ever told to run it.
  const bad = JSON.parse(fleet('rollout', 'digits@1.0.1-nan', '--group', 'local', '--stages', '1,100', '--db', ready.db, '--json')) as { id: string };
  const halted = await waitFor(async () => {
    const s = await status(ready.db, bad.id);
    if (s.state === 'completed') throw new WaitAbort('the NaN version completed its rollout');
    return s.state === 'halted' ? s : undefined;
  }, { timeoutMs: 180_000, intervalMs: 1000, what: 'the NaN rollout to halt' });
  t.match(halted.reason, /failed digits@1\.0\.1-nan at stage 1/, `halted: ${halted.reason}`);
  t.equal(halted.stages[1]!.devices.length, 0, 'stage 2 never started');
  const badCanaries = halted.stages[0]!.devices;
  t.ok(badCanaries.length >= 1 && badCanaries.length < 3, 'only the canary was touched');
  // The device's own record of its update steps (GET /v1/status, rollouts.digits.events).
  const events = async (url: string): Promise<{ version: string; step: string; reason?: string }[]> => {
    const st = await (await fetch(`${url}/v1/status`)).json() as { rollouts: { digits: { events: { version: string; step: string; reason?: string }[] } } };
    return st.rollouts.digits.events;
  };
  for (const d of ready.devices) {
    const nan = (await events(d.url)).filter((e) => e.version === '1.0.1-nan');
    if (badCanaries.some((c) => c.id === d.id)) {
      t.match(nan.find((e) => e.step === 'rolled_back'), { reason: /NaN or Infinity/ }, `${d.id} (canary) rolled 1.0.1-nan back itself and recorded why`);
    } else {
      t.same(nan, [], `${d.id} never had 1.0.1-nan`);
    }
  }
  await waitFor(async () => {
    for (const d of ready.devices) if (await servedVersion(d.url) !== int8Version) return false;
    return true;
  }, { timeoutMs: 60_000, intervalMs: 500, what: `every device back on ${int8}` });
  t.pass(`every device serves ${int8} again`);

  child.kill('SIGTERM');
  const code = await waitFor(() => exited !== undefined && { code: exited }, { timeoutMs: 60_000, what: 'npm start to stop on SIGTERM' });
  t.equal(code.code, 0, 'SIGTERM stops the whole fleet cleanly');
});

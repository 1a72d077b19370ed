// The real daemon as a child process: systemd notify protocol, signals, health endpoint,
// Prometheus exposition, refusing a bad config before anything starts.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { root, spawnAgent, spawnAgentWithFile } from './helpers/agent.js';
import { canConnect, freePort } from './helpers/ports.js';
import { notifySocket } from './helpers/notify.js';
import { waitFor } from './helpers/wait.js';

t.test('sd_notify: READY=1, then WATCHDOG=1, then STOPPING=1 after SIGTERM, exit 0', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-notify-'));
  const { path: sock, messages } = await notifySocket(t, dir);

  // WATCHDOG_USEC=300ms: the agent must ping every 150 ms.
  const agent = spawnAgent({}, { env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '300000' } });
  t.teardown(() => agent.kill('SIGKILL'));
  await waitFor(() => messages.some((m) => m.startsWith('READY=1')), { what: 'READY=1', timeoutMs: 30_000 });
  await waitFor(() => messages.filter((m) => m === 'WATCHDOG=1').length >= 3, { what: 'three WATCHDOG=1 pings' });
  const url = await agent.ready();
  const res = await fetch(`${url}/healthz`);
  t.equal(res.status, 200, 'health answers while systemd thinks we are ready');

  agent.kill('SIGTERM');
  const { code } = await agent.exited();
  t.equal(code, 0, 'exit code 0 after SIGTERM');
  await waitFor(() => messages.includes('STOPPING=1'), { what: 'STOPPING=1' });
  const order = ['READY=1', 'WATCHDOG=1', 'STOPPING=1'].map((s) => messages.findIndex((m) => m.startsWith(s)));
  t.ok(order[0] < order[1] && order[1] < order[2], `messages arrive in order: ${messages.slice(0, 3).join(' | ')} ... ${messages.at(-1)}`);
});

t.test('health endpoint over real HTTP, and /metrics passes promtool', async (t) => {
  const agent = spawnAgent({ deviceId: 'pi-health-1' });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'binds loopback by default');

  t.same(await (await fetch(`${url}/healthz`)).json(), { status: 'ok' });
  const ready = await fetch(`${url}/readyz`);
  t.equal(ready.status, 200, '/readyz is 200 with no models configured and storage open');
  const status = (await (await fetch(`${url}/v1/status`)).json()) as Record<string, unknown>;
  t.equal(status.deviceId, 'pi-health-1');
  t.match(status, { version: /^\d+\.\d+\.\d+/, state: 'running', uptimeSeconds: Number, kernelVariant: /^(scalar|avx2|avx512vnni|avxvnni|neon|dotprod)$/, arch: process.arch });

  const metrics = await (await fetch(`${url}/metrics`)).text();
  t.match(metrics, /edge_agent_info\{.*device="pi-health-1".*\} 1/, 'agent info gauge');
  t.match(metrics, /edge_agent_process_resident_memory_bytes/, 'process metrics');
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
  t.equal(promtool.status, 0, `promtool check metrics: ${promtool.stdout}${promtool.stderr}`);

  const notFound = await fetch(`${url}/nope`);
  t.equal(notFound.status, 404);
  t.match(await notFound.json(), { error: { code: 'EDGE_NOT_FOUND' } });
  agent.kill('SIGINT');
  t.equal((await agent.exited()).code, 0, 'SIGINT also exits 0');
});

t.test('a bad config is refused with the field path, and nothing is started', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-badcfg-'));
  const port = await freePort();
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ deviceId: 'x', dataDir: path.join(dir, 'data'), health: { port, hots: 'a' } }));
  const agent = spawnAgentWithFile(file, dir);
  const { code } = await agent.exited();
  t.equal(code, 78, 'exit status EX_CONFIG (78), which the unit file does not restart');
  t.match(agent.stderr(), new RegExp(`invalid config file ${file.replace(/[.]/g, '\\.')}`), 'names the file');
  t.match(agent.stderr(), /\/health: unknown key "hots"/, 'names the field path');
  t.notOk(existsSync(path.join(dir, 'data')), 'no data directory was created');
  t.notOk(await canConnect(port), 'nothing listens on the configured port');
});

t.test('a token is required on every route but /healthz when set', async (t) => {
  const token = 'a-long-enough-secret-token';
  const agent = spawnAgent({ health: { token } });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'liveness stays open for systemd and probes');
  t.equal((await fetch(`${url}/v1/status`)).status, 401, 'no token: 401');
  t.equal((await fetch(`${url}/v1/status`, { headers: { authorization: 'Bearer wrong-token-of-same-size!' } })).status, 401);
  t.equal((await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  t.notMatch(JSON.stringify(agent.logs), token, 'the token never appears in the logs');
});

t.test('the systemd unit passes systemd-analyze verify', async (t) => {
  // The unit starts <prefix>/current/node/bin/node (deploy/install.sh puts it there); verify
  // checks that the command exists: the unit as installed into a scratch prefix whose current
  // release's node is this one.
  const prefix = mkdtempSync(path.join(tmpdir(), 'edge-unit-'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));
  mkdirSync(path.join(prefix, 'releases/0.0.0/node/bin'), { recursive: true });
  symlinkSync(process.execPath, path.join(prefix, 'releases/0.0.0/node/bin/node'));
  symlinkSync('releases/0.0.0', path.join(prefix, 'current'));
  const text = readFileSync(path.join(root, 'deploy/edge-agent.service'), 'utf8');
  t.match(text, /^ExecStartPre=\/opt\/edge-agent\/current\/node\/bin\/node \S+ update guard --config /m, 'the boot guard before each start');
  t.match(text, /^ReadWritePaths=\/opt\/edge-agent$/m, 'the updater may write its releases');
  t.match(text, /^Restart=on-failure$/m);
  const unit = path.join(prefix, 'edge-agent.service');
  writeFileSync(unit, text.replaceAll('/opt/edge-agent', prefix));
  const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.notMatch(r.stderr, /Unknown key|ignoring|Invalid/, `no warnings: ${r.stderr}`);
});

t.test('the bin answers --help', async (t) => {
  const r = spawnSync(process.execPath, [path.join(root, 'bin/edge-agent.js'), '--help'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /Usage: edge-agent/);
  t.match(r.stdout, /run \[options\]/);
});

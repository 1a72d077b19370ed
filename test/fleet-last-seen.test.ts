// "Last seen" and uptime come from any message the device sends, not only its status (which
// it publishes on connect and on change): a real agent and controller over a real Mosquitto.
// While the device only sends telemetry, and later a command reply, its last seen moves on and
// its uptime grows, in the store, `edge-fleet devices` and the dashboard's device view.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { deviceView } from '../controller/dashboard/views.js';
import { sendCommand } from '../controller/requests.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { repoRoot } from './helpers/pki.js';
import { waitFor } from './helpers/wait.js';
import { startAgent, startController, tempDir } from './fleet-support.js';

t.setTimeout(120_000);

t.test('telemetry and command replies move last seen and uptime on; the status alone would not', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const work = tempDir('edge-last-seen-');
  t.teardown(() => work.remove());
  const db = path.join(work.dir, 'fleet.db');
  const c = await startController(broker.url, { db });
  t.teardown(() => c.stop());
  const a = await startAgent(broker.url, 'seen-dev', { mqtt: { batchMaxBytes: 4096 } });
  t.teardown(() => a.stop());

  const online = await waitFor(() => { const d = c.store.device('seen-dev'); return d?.state === 'online' && d; }, { timeoutMs: 15_000, what: 'the device online at the controller' });
  const statusSeen = Date.parse(online.lastSeen);
  const statuses = c.ctl.counters.statuses;
  const statusUptime = online.status?.uptimeSeconds as number;
  t.type(statusUptime, 'number', 'the status carries the uptime at the time it was published');

  // Only telemetry from now on: the device's last seen must move well past its status.
  let i = 0;
  const timer = setInterval(() => a.agent.telemetry.record('metrics', { i: i++ }), 50);
  t.teardown(() => clearInterval(timer));
  const later = await waitFor(() => {
    const d = c.store.device('seen-dev');
    return d && Date.parse(d.lastSeen) >= statusSeen + 1500 && d;
  }, { timeoutMs: 20_000, what: 'last seen moved on by telemetry' });
  clearInterval(timer);
  t.equal(c.ctl.counters.statuses, statuses, 'no status was published meanwhile: telemetry alone moved last seen');
  t.ok(later.uptimeSeconds! >= statusUptime + 1, `uptime grew with it (${statusUptime} s in the status, ${later.uptimeSeconds} s at the last message)`);
  const view = (await deviceView(c.ctl.db, 'seen-dev'))!;
  t.equal(view.lastSeen, later.lastSeen, 'the dashboard shows the same last seen');
  t.ok((view.uptimeSeconds as number) >= statusUptime + 1, 'and the grown uptime');

  // The telemetry drained, then a command: its reply moves last seen on too.
  await waitFor(() => a.agent.telemetry.stats().depth === 0, { timeoutMs: 15_000, what: 'the telemetry buffer drained' });
  const drained = await waitFor(() => {
    const d = c.store.device('seen-dev')!;
    return Date.now() > Date.parse(d.lastSeen) && d;
  }, { timeoutMs: 5000, what: 'a clock tick past the last message' });
  const before = Date.now();
  const reply = await sendCommand(c.ctl.client!, c.ctl.protocolVersion, 'seen-dev', 'ping', {});
  t.equal(reply.ok, true, 'the device answered the ping');
  const afterReply = await waitFor(() => { const d = c.store.device('seen-dev')!; return Date.parse(d.lastSeen) >= before && d; }, { timeoutMs: 10_000, what: 'last seen moved on by the command reply' });
  t.ok(Date.parse(afterReply.lastSeen) > Date.parse(drained.lastSeen), 'the command reply counts as the device seen');
  t.equal(c.ctl.counters.statuses, statuses, 'still no status published');

  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/edge-fleet.js'), 'devices', '--db', db, '--json'], { encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 0, r.stderr);
  const row = (JSON.parse(r.stdout) as { deviceId: string; lastSeen: string; uptimeSeconds?: number }[]).find((d) => d.deviceId === 'seen-dev')!;
  t.ok(Date.parse(row.lastSeen) >= before, 'edge-fleet devices prints the same last seen');
  t.ok(row.uptimeSeconds! >= statusUptime + 1, 'and the grown uptime');
});

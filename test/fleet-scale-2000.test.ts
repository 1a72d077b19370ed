// 2,000 simulated devices (scripts/fleet-sim.ts: real MQTT clients speaking the agent's
// protocol, in worker processes) against a real Mosquitto and `edge-fleet serve` as a process
// (issue 20, item 4). The controller's picture of the fleet is complete, device by device:
// after the controller is SIGKILLed and started again (devices that went offline meanwhile are
// offline, every other one online), and after the broker is killed (-9) and restarted without
// persistence (the controller subscribes again and follows the devices that go away after).
// Every record the controller acked is in its database (lost = 0).
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { tempDir } from './fleet-support.js';
import { FleetSim } from '../scripts/fleet-sim.js';
import { openDbReader, startControllerProcess, type ControllerProc, type DbReader } from '../scripts/fleet-scale-support.js';

t.setTimeout(280_000);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const N = 2000;

async function picture(db: DbReader): Promise<{ known: number; online: Set<string>; offline: Set<string> }> {
  const rows = await db.devices();
  return {
    known: rows.length,
    online: new Set(rows.filter((r) => r.state === 'online').map((r) => r.deviceId)),
    offline: new Set(rows.filter((r) => r.state === 'offline').map((r) => r.deviceId)),
  };
}

t.test(`${N} simulated devices: the controller's picture is complete after its SIGKILL and after a broker kill -9`, async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const work = tempDir('edge-fleet-2000-');
  t.teardown(() => work.remove());
  const dbFile = path.join(work.dir, 'fleet.db');
  const start = (): Promise<ControllerProc> => startControllerProcess(root, { broker: broker.url, db: dbFile, id: 'ctl-2000', fromSource: true });
  let ctl = await start();
  t.teardown(() => ctl.stop());
  const db = await openDbReader(dbFile);
  t.teardown(() => db.close());
  const sim = new FleetSim({ url: broker.url, devices: N, workers: 2, capMs: 4000, minMs: 500, ackTimeoutMs: 4000, backlogSpreadMs: 1000, batchRecords: 50 });
  t.teardown(() => sim.stop());
  await sim.start();
  sim.record(10);
  const fresh = (): ReturnType<FleetSim['totals']> => {
    if (sim.failure) throw new Error(sim.failure);
    return sim.totals();
  };

  await waitFor(async () => (await picture(db)).online.size === N, { timeoutMs: 120_000, intervalMs: 500, what: `all ${N} devices online in the controller's database` });
  let p = await picture(db);
  t.equal(p.known, N, `all ${N} devices known`);
  t.equal(p.online.size, N, `all ${N} online`);

  // The controller dies; meanwhile 200 devices go away uncleanly (the broker publishes their
  // Last Will) and every device records more telemetry; the controller starts again.
  const gone = sim.ids.filter((_, i) => i % 10 === 3);
  ctl.kill();
  await waitFor(() => ctl.proc.exitCode !== null || ctl.proc.signalCode !== null, { what: 'the controller killed' });
  const made = fresh().recordsMade;
  sim.drop(gone);
  sim.record(10);
  await waitFor(() => fresh().connected === N - gone.length && fresh().recordsMade >= made + 10 * (N - gone.length), { timeoutMs: 30_000, what: 'the devices dropped and the new records made' });
  ctl = await start();
  await waitFor(async () => { const q = await picture(db); return q.offline.size === gone.length && q.online.size === N - gone.length; },
    { timeoutMs: 120_000, intervalMs: 500, what: () => `${gone.length} offline and ${N - gone.length} online after the controller restart` });
  p = await picture(db);
  t.equal(p.known, N, 'every device known after the controller restart');
  t.same([...p.offline].sort(), [...gone].sort(), 'exactly the devices that went away while it was down are offline');
  t.equal(p.online.size, N - gone.length, 'every other device online');

  // They come back; then the broker is killed and restarted with nothing persisted.
  sim.revive(gone);
  await waitFor(async () => (await picture(db)).online.size === N, { timeoutMs: 60_000, intervalMs: 500, what: 'the dropped devices back online' });
  const exited = new Promise((r) => broker.proc.once('exit', r));
  const tKill = Date.now();
  broker.proc.kill('SIGKILL');
  await exited;
  await broker.restart();
  await waitFor(() => { const s = fresh(); return s.connected === N && s.minLastConnectAt > tKill; }, { timeoutMs: 60_000, intervalMs: 200, what: 'every device reconnected after the broker restart' });
  // The controller must have subscribed again: devices that go away now are seen going.
  const gone2 = sim.ids.filter((_, i) => i % 20 === 7);
  sim.drop(gone2);
  await waitFor(async () => { const q = await picture(db); return q.offline.size === gone2.length && q.online.size === N - gone2.length; },
    { timeoutMs: 60_000, intervalMs: 500, what: () => `${gone2.length} offline after the broker restart` });
  p = await picture(db);
  t.equal(p.known, N, 'every device known after the broker restart');
  t.same([...p.offline].sort(), [...gone2].sort(), 'exactly the devices that went away after the broker restart are offline');
  t.equal(p.online.size, N - gone2.length, 'every other device online');

  // Telemetry: the live devices' backlogs are all acked, and every acked record is stored.
  sim.revive(gone2);
  await waitFor(() => { const s = fresh(); return s.recordsAcked === s.recordsMade; }, { timeoutMs: 120_000, intervalMs: 250, what: 'every record acked' });
  const s = await sim.fresh();
  t.equal(s.recordsMade, N * 21, 'the drift report and 20 records per device made');
  t.equal(await db.telemetryRows(), s.recordsAcked, 'every acked record is stored: lost = 0');
});

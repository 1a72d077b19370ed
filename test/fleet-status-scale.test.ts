// The controller's picture of the fleet is complete however many devices there are (issue 20,
// item 3): 2,000 devices' retained statuses on a real Mosquitto with its default queue of 1,000
// QoS 1 messages per client all reach the controller, when it starts, after a restart (with
// the statuses that changed while it was away), and after the broker restarts.
import t from 'tap';
import mqtt from 'mqtt';
import path from 'node:path';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startController, tempDir } from './fleet-support.js';

t.setTimeout(180_000);

const N = 2000;

async function publishStatuses(url: string, state: (i: number) => string): Promise<void> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `sim-${Math.random().toString(36).slice(2, 8)}`, reconnectPeriod: 0 });
  await Promise.all(Array.from({ length: N }, (_, i) => c.publishAsync(`edge/v1/sim-${i}/status`,
    JSON.stringify({ v: 1, protocol: 'edge/v1', deviceId: `sim-${i}`, state: state(i), agentVersion: '0.1.0', models: [], ts: new Date().toISOString() }), { qos: 1, retain: true })));
  await c.endAsync();
}

t.test(`${N} retained statuses: all reach the controller at start, after its restart and after a broker restart`, async (t) => {
  const broker = await startMosquitto({ persistence: true });
  t.teardown(() => destroyMosquitto(broker));
  await publishStatuses(broker.url, () => 'online');

  const db = path.join(tempDir('edge-fleet-scale-').dir, 'fleet.db');
  const clientId = 'ctl-scale';
  let ctl = await startController(broker.url, { db, clientId });
  const online = () => ctl.store.devices().filter((d) => d.state === 'online').length;
  await waitFor(() => ctl.store.devices().length === N, { timeoutMs: 60_000, what: `all ${N} devices known` });
  t.equal(ctl.store.devices().length, N, `all ${N} devices known at start`);

  // The controller goes away; half the fleet goes offline meanwhile; it comes back (same
  // session, same database).
  await ctl.stop();
  await publishStatuses(broker.url, (i) => (i % 2 ? 'offline' : 'online'));
  ctl = await startController(broker.url, { db, clientId });
  t.teardown(() => ctl.stop());
  await waitFor(() => online() === N / 2, { timeoutMs: 60_000, what: 'the statuses changed while the controller was away' });
  t.equal(online(), N / 2, 'every status change made while the controller was away is seen after its restart');

  // The broker restarts (its retained messages persisted); the fleet comes back online meanwhile.
  await broker.restart();
  await publishStatuses(broker.url, () => 'online');
  await waitFor(() => online() === N, { timeoutMs: 60_000, what: 'all online again after the broker restart' });
  t.equal(online(), N, 'and after a broker restart');
});

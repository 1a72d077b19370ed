// Telemetry that waited at the broker while the controller was away is all stored when it
// comes back: its persistent session's backlog arrives right after CONNACK, and the handler
// must already be listening (mqtt.js acknowledges each message either way).
import t from 'tap';
import mqtt from 'mqtt';
import path from 'node:path';
import { encodeBatch } from '../protocol/telemetry-batch.js';
import { topics } from '../protocol/topics.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startController, tempDir } from './fleet-support.js';

t.test('a restarted controller stores every batch queued for it', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const db = path.join(tempDir('edge-ctl-restart-').dir, 'fleet.db');
  const first = await startController(broker.url, { clientId: 'ctl-restart', db, share: undefined });
  await first.stop(); // its persistent session stays at the broker and collects what comes next

  const device = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'pi-backlog' });
  t.teardown(() => device.endAsync());
  const n = 100;
  for (let i = 1; i <= n; i++) {
    await device.publishAsync(topics.telemetry('pi-backlog', 'events'), encodeBatch('events', [{ seq: i, ts: Date.now(), payload: { i } }]), { qos: 1 });
  }

  const second = await startController(broker.url, { clientId: 'ctl-restart', db, share: undefined });
  t.teardown(() => second.stop());
  await waitFor(() => second.store.telemetry('pi-backlog', { stream: 'events' }).length === n, {
    timeoutMs: 15_000,
    what: () => `all ${n} queued batches stored (have ${second.store.telemetry('pi-backlog', { stream: 'events' }).length})`,
  });
  t.equal(second.store.telemetry('pi-backlog', { stream: 'events' }).length, n, 'every queued batch is stored once');
});

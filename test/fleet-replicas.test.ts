// Scale-out: two controller replicas share the fleet's messages through MQTT 5 shared
// subscriptions ($share/edge-fleet/...) on Mosquitto. Every telemetry batch is stored by
// exactly one of them, both take part, and together they hold every record once.
import t from 'tap';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startAgent, startController } from './fleet-support.js';

t.test('two replicas with a shared subscription store every batch exactly once', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const r1 = await startController(broker.url, { clientId: 'replica-1', share: 'edge-fleet' });
  t.teardown(() => r1.stop());
  const r2 = await startController(broker.url, { clientId: 'replica-2', share: 'edge-fleet' });
  t.teardown(() => r2.stop());
  t.equal(r1.ctl.protocolVersion, 5, 'replicas speak MQTT 5');

  // Small batches, so there are many messages to share out.
  const a = await startAgent(broker.url, 'rep-dev-1', { mqtt: { batchMaxBytes: 1024, drainRecordsPerSecond: 100_000 } });
  t.teardown(() => a.stop());
  const b = await startAgent(broker.url, 'rep-dev-2', { mqtt: { batchMaxBytes: 1024, drainRecordsPerSecond: 100_000 } });
  t.teardown(() => b.stop());

  const N = 600;
  for (let i = 0; i < N; i++) {
    a.agent.telemetry.record('metrics', { i, device: 1 });
    b.agent.telemetry.record('metrics', { i, device: 2 });
    if (i % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  const stored = (dev: string): number => r1.store.telemetry(dev).length + r2.store.telemetry(dev).length;
  await waitFor(() => stored('rep-dev-1') >= N && stored('rep-dev-2') >= N, { timeoutMs: 30_000, what: () => `${2 * N} records across the replicas (have ${stored('rep-dev-1') + stored('rep-dev-2')})` });

  for (const dev of ['rep-dev-1', 'rep-dev-2']) {
    const s1 = new Set(r1.store.telemetry(dev).map((r) => r.seq));
    const s2 = new Set(r2.store.telemetry(dev).map((r) => r.seq));
    const both = [...s1].filter((s) => s2.has(s));
    t.equal(both.length, 0, `${dev}: no record stored by both replicas`);
    t.equal(s1.size + s2.size, N, `${dev}: all ${N} records stored`);
  }
  const batches1 = r1.store.batches().length;
  const batches2 = r2.store.batches().length;
  t.ok(batches1 > 0 && batches2 > 0, `both replicas took part (${batches1} and ${batches2} batches)`);
  const dups = [...r1.store.batches(), ...r2.store.batches()].reduce((n, x) => n + x.duplicates, 0);
  t.equal(dups, 0, 'no batch was delivered twice');
  // Retained status is not shared: every replica knows every device.
  await waitFor(() => r1.store.devices().length === 2 && r2.store.devices().length === 2, { what: 'both replicas see both devices' });
  t.pass('status reaches every replica');
});

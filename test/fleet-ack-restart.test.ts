// Issue 11: a broker restarted WITHOUT persistence forgets the controller's subscription, and
// whatever the agent publishes before the controller subscribes again is PUBACKed and
// dropped. With the controller's end-to-end ack (mqtt.telemetryAck "controller") the agent
// keeps those batches until the controller has stored them, and sends them again when no
// ack comes. Real parts: the agent daemon from dist/ as a child process, Mosquitto with
// persistence off, the controller on its own SQLite file, telemetry POSTed over HTTP.
import t from 'tap';
import { Rig } from '../scripts/reliability/rig.js';
import { TelemetryLoad } from '../scripts/reliability/load.js';
import { waitFor } from './helpers/wait.js';

process.setMaxListeners(50);

interface DrainStats { recordsPubacked: number; ackTimeouts: number; ackMode: string }

t.test('broker restarted without persistence: every record answered 201 reaches the controller', async (t) => {
  const rig = await new Rig({
    persistence: false,
    agent: { mqtt: { telemetryAck: 'controller', ackTimeoutMs: 2000, ackRetryMaxMs: 2000 } },
  }).start();
  t.teardown(() => rig.stop());
  const drain = async (): Promise<DrainStats> =>
    ((await (await fetch(`${rig.url}/v1/status`)).json()) as { fleet: { telemetry: DrainStats } }).fleet.telemetry;
  t.equal((await drain()).ackMode, 'controller', 'the agent waits for the controller\'s acks');

  const tel = new TelemetryLoad(() => rig.url, 100).start();
  t.teardown(() => tel.stop());
  await waitFor(() => rig.stored().delivered >= 50, { timeoutMs: 20_000, what: 'records flowing to the controller' });

  // The controller is away when the broker restarts, so its session (subscriptions) exists
  // only in the broker's memory, which the restart wipes.
  await rig.stopController();
  await rig.broker.restart();
  const before = (await drain()).recordsPubacked;
  // The agent reconnects and publishes into a broker where nobody subscribes: PUBACKed, dropped.
  await waitFor(async () => (await drain()).recordsPubacked >= before + 150, {
    timeoutMs: 20_000, what: 'the agent publishing after the restart, before the controller is back',
  });
  await rig.startController();
  await waitFor(() => rig.stored().delivered > 0 && rig.controller!.counters.batches >= 3, { timeoutMs: 20_000, what: 'the controller storing again' });
  await tel.stop();

  // Waits until the buffer is empty and the controller holds what was accepted (or 45 s).
  const a = await rig.account(45_000);
  const missing = rig.missing(tel.sent);
  t.comment(`accepted ${a.accepted}, delivered ${a.delivered}, duplicates ${a.duplicates}, queued ${a.queued}, answered-201 seqs missing ${missing}; ack timeouts ${(await drain()).ackTimeouts}`);
  t.ok(tel.accepted() > 150, `records were answered 201 (${tel.accepted()})`);
  t.equal(missing, 0, 'every seq answered 201 is stored at the controller');
  t.equal(a.lost, 0, 'lost 0');
  t.equal(a.delivered, a.accepted, 'the controller holds every accepted record once');
  t.equal(a.queued, 0, 'the agent buffer drained');
  t.ok((await drain()).ackTimeouts >= 1, 'what the broker dropped came back because its acks were missing');
});

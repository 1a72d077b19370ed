// A telemetry batch the broker refuses for good (here: its ACL forbids the topic, PUBACK
// reason 0x87) goes to quarantine with its reason; it neither blocks the other streams nor
// makes the link reconnect in a loop. Real Mosquitto with an ACL file.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startAgent, startController } from './fleet-support.js';

t.test('a batch the broker refuses is quarantined and the rest flows', async (t) => {
  const broker = await startMosquitto({
    listenerConf: (port, dir) => {
      const acl = path.join(dir, 'acl');
      writeFileSync(acl, [
        'topic read edge/v1/#',
        'topic write edge/v1/pi-acl/status',
        'topic write edge/v1/pi-acl/telemetry/events',
        'topic write edge/v1/pi-acl/models/reported',
        'topic write edge/v1/pi-acl/cmd/res',
        'topic write edge/v1/pi-acl/artifacts/req',
        'topic write edge/v1/pi-acl/telemetry/+/ack',
      ].join('\n') + '\n');
      return `listener ${port} 127.0.0.1\nallow_anonymous true\nacl_file ${acl}`;
    },
  });
  t.teardown(() => destroyMosquitto(broker));
  const ctl = await startController(broker.url);
  t.teardown(() => ctl.stop());
  const a = await startAgent(broker.url, 'pi-acl');
  t.teardown(() => a.stop());
  const tel = a.agent.telemetry;

  for (let i = 0; i < 3; i++) tel.record('poison', { i });
  for (let i = 0; i < 3; i++) tel.record('events', { i });
  await tel.flush();
  a.agent.fleet.kickTelemetry();

  await waitFor(() => ctl.store.telemetry('pi-acl', { stream: 'events' }).length === 3, { timeoutMs: 20_000, what: 'the three events at the controller' });
  await waitFor(() => (tel.stats() as { quarantined: number }).quarantined >= 3, { timeoutMs: 20_000, what: 'the refused records in quarantine' });
  const q = tel.quarantined();
  t.ok(q.length >= 3 && q.every((r) => /reason code 0x87/.test(String(r.reason))), `quarantined with the broker's reason: ${JSON.stringify(q[0])}`);
  t.equal(ctl.store.telemetry('pi-acl', { stream: 'poison' }).length, 0, 'nothing of the refused stream reached the controller');
  const link = a.link.status() as { connects?: number; state?: string };
  t.equal(link.state, 'connected', 'the link stays up');
  t.equal(link.connects, 1, 'no reconnect loop');
});

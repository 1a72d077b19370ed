// Command replies go only under the device's reply prefix (issue 26, item 6). A requester
// that names the device's own models/reported, or another device's cmd, as the response topic
// gets its reply on edge/v1/{d}/cmd/res instead; the controller's view of the device's
// reported state is not overwritten by a ping reply. The controller answers artifact requests
// only on the requesting device's artifacts/res. Real parts: the agent daemon, Mosquitto,
// the controller on its own SQLite file.
import t from 'tap';
import mqtt from 'mqtt';
import { topics } from '../protocol/topics.js';
import { sendCommand } from '../controller/requests.js';
import { spawnAgent } from './helpers/agent.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startController, watcher } from './fleet-support.js';

t.setTimeout(90_000);

t.test('replies and artifact answers never go to a topic outside the reply prefix', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const ctl = await startController(broker.url);
  t.teardown(() => ctl.stop());
  const agent = spawnAgent({
    deviceId: 'reply-dev',
    security: { requireSignedPackages: false },
    mqtt: { url: broker.url, reconnectMinMs: 50, reconnectMaxMs: 500, keepaliveSeconds: 5 },
  });
  t.teardown(() => agent.kill('SIGKILL'));
  await agent.ready();
  await waitFor(() => ctl.store.device('reply-dev')?.reported, { timeoutMs: 15_000, what: 'the device\'s reported state at the controller' });
  const reportedBefore = JSON.stringify(ctl.store.device('reply-dev')!.reported);

  const w = await watcher(broker.url, ['#']);
  t.teardown(() => w.close());
  const on = (topic: string) => w.messages.filter((m) => m.topic === topic);

  const attacker = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'requester', reconnectPeriod: 0 });
  t.teardown(() => attacker.endAsync());
  const hostile = [topics.reported('reply-dev'), topics.cmd('other-dev'), topics.desired('reply-dev'), 'somewhere/else', `${topics.cmdRes('reply-dev')}/a/b`];
  for (const [i, responseTopic] of hostile.entries()) {
    await attacker.publishAsync(topics.cmd('reply-dev'), JSON.stringify({ id: `h${i}`, name: 'ping' }), { qos: 1, properties: { responseTopic, correlationData: Buffer.from(`c${i}`) } });
  }
  const fallback = topics.cmdRes('reply-dev');
  await waitFor(() => on(fallback).length >= hostile.length, { timeoutMs: 15_000, what: () => `${hostile.length} replies on ${fallback} (have ${on(fallback).length})` });
  for (const [i, responseTopic] of hostile.entries()) {
    t.ok(on(fallback).some((m) => JSON.parse(m.payload.toString()).id === `h${i}`), `the reply to a request naming ${responseTopic} went to cmd/res`);
    t.notOk(w.messages.some((m) => m.topic === responseTopic && m.payload.toString().includes(`"h${i}"`)), `nothing published on ${responseTopic}`);
  }
  t.equal(JSON.stringify(ctl.store.device('reply-dev')!.reported), reportedBefore, 'the controller\'s copy of the reported state is untouched');
  t.ok(agent.logs.some((l) => /outside this device's reply prefix/.test(String(l.msg))), 'the device logs the refused response topic');

  // The reply prefix works: edge-fleet's own request/response.
  const reply = await sendCommand(ctl.ctl.client!, ctl.ctl.protocolVersion, 'reply-dev', 'ping', {});
  t.equal(reply.ok, true, 'edge-fleet cmd still gets its reply');
  t.ok(w.messages.some((m) => m.topic.startsWith(`${fallback}/`)), `under ${fallback}/{client}`);

  // The controller side: an artifact request naming another device's desired topic.
  await attacker.publishAsync(topics.artifactReq('reply-dev'), JSON.stringify({ id: 'a1', op: 'manifest', sha256: '0'.repeat(64) }),
    { qos: 1, properties: { responseTopic: topics.desired('victim-dev'), correlationData: Buffer.from('a1') } });
  await waitFor(() => on(topics.artifactRes('reply-dev')).length >= 1, { timeoutMs: 10_000, what: 'the controller\'s answer' });
  t.equal(on(topics.desired('victim-dev')).length, 0, 'nothing published on the victim\'s desired topic');
  t.equal(agent.proc.exitCode, null, 'the agent keeps running');
});

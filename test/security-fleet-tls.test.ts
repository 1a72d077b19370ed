// The agent's own fleet link over mqtts:// with the device certificate from make-ca.sh,
// against the production Mosquitto config: it connects, its status reaches the controller,
// and the controller's command (the only identity allowed to send one) is answered.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { FleetLink } from '../agent/fleet/link.js';
import { destroyMosquitto } from './helpers/mosquitto.js';
import { makePki, startTlsBroker, tryConnect } from './helpers/pki.js';
import { waitFor } from './helpers/wait.js';

t.test('the agent connects over mqtts:// with its certificate and answers the controller', async (t) => {
  const pki = makePki(['dev-a:lab']);
  t.teardown(() => pki.remove());
  const broker = await startTlsBroker(pki);
  t.teardown(() => destroyMosquitto(broker));
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-fleet-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const config = parseConfig({
    deviceId: 'dev-a',
    dataDir: 'data',
    log: { level: 'silent' },
    health: { port: 0 },
    mqtt: {
      url: broker.tlsUrl,
      ca: pki.file('ca.crt'),
      cert: pki.file('devices/dev-a.crt'),
      key: pki.file('devices/dev-a.key'),
      groups: ['lab'],
      reconnectMinMs: 100,
      reconnectMaxMs: 1000,
    },
    security: { requireSignedPackages: false },
  }, 'test', dir);
  const agent = new Agent(config);
  // Use the agent's own fleet link when agent.ts wires one, else add it the same way.
  let link = agent.components.find((c): c is FleetLink => c instanceof FleetLink);
  if (!link) {
    link = new FleetLink(agent.context);
    agent.components.push(link);
  }

  const ctlConn = await tryConnect(broker.tlsUrl, pki.tls('controller'));
  if (!ctlConn.ok) throw new Error(ctlConn.error);
  const ctl: MqttClient = ctlConn.client;
  t.teardown(() => ctl.endAsync());
  const got: Array<{ topic: string; payload: string }> = [];
  ctl.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }));
  await ctl.subscribeAsync(['edge/v1/dev-a/status', 'edge/v1/dev-a/cmd/res'], { qos: 1 });

  await agent.start();
  t.teardown(() => agent.stop());
  const fleet = link;
  await waitFor(() => fleet.state === 'connected', { timeoutMs: 20_000, what: () => `fleet link connected (${JSON.stringify(fleet.status())})` });
  t.equal(fleet.state, 'connected', 'the link is up over TLS with the device certificate');
  await waitFor(() => got.some((m) => m.topic === 'edge/v1/dev-a/status' && /online/.test(m.payload)),
    { timeoutMs: 10_000, what: 'the retained online status at the controller' });

  await ctl.publishAsync('edge/v1/dev-a/cmd', JSON.stringify({ id: 'tls-ping-1', name: 'ping' }), { qos: 1 });
  const res = await waitFor(() => got.find((m) => m.topic === 'edge/v1/dev-a/cmd/res'), { timeoutMs: 10_000, what: 'the ping reply' });
  const reply = JSON.parse(res.payload) as { id: string; ok: boolean; result?: { pong?: boolean } };
  t.match(reply, { id: 'tls-ping-1', ok: true, result: { pong: true } }, 'the controller\'s command is answered');
});

t.test('an agent without its certificate is refused by the broker and keeps running offline', async (t) => {
  const pki = makePki(['dev-a']);
  t.teardown(() => pki.remove());
  const broker = await startTlsBroker(pki);
  t.teardown(() => destroyMosquitto(broker));
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-fleet-nocert-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig({
    deviceId: 'dev-a', dataDir: 'data', log: { level: 'silent' }, health: { port: 0 },
    mqtt: { url: broker.tlsUrl, ca: pki.file('ca.crt'), reconnectMinMs: 100, reconnectMaxMs: 500 },
    security: { requireSignedPackages: false },
  }, 'test', dir);
  const agent = new Agent(config);
  let link = agent.components.find((c): c is FleetLink => c instanceof FleetLink);
  if (!link) {
    link = new FleetLink(agent.context);
    agent.components.push(link);
  }
  const fleet = link;
  await agent.start();
  t.teardown(() => agent.stop());
  await waitFor(() => /certificate|alert|TLS|ECONNRESET|closed/i.test(String(fleet.status().lastError ?? '')) && fleet.status().reconnectAttempt as number >= 2,
    { timeoutMs: 20_000, what: () => `the link failing the TLS handshake and retrying (${JSON.stringify(fleet.status())})` });
  t.not(fleet.state, 'connected', 'never connected without a client certificate');
  t.match(String(fleet.status().warning), /unreachable/, 'status says the broker is unreachable');
  const health = await fetch(`${agent.url}/healthz`);
  t.equal(health.status, 200, 'the agent keeps serving locally');
});

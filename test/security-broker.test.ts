// The shipped Mosquitto production config (mutual TLS, CN as username, ACL by pattern) with
// a CA from scripts/make-ca.sh, against a real broker and real mqtt.js clients.
import t, { type Test } from 'tap';
import type { MqttClient } from 'mqtt';
import { readFileSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { destroyMosquitto } from './helpers/mosquitto.js';
import { installBrokerFiles, makePki, repoRoot, startTlsBroker, tryConnect } from './helpers/pki.js';
import { waitFor } from './helpers/wait.js';

const pki = makePki(['dev-a:lab', 'dev-b:north', 'dev-c:lab']);
t.teardown(() => pki.remove());
const broker = await startTlsBroker(pki);
t.teardown(() => destroyMosquitto(broker));

async function connectAs(t: Test, identity: string): Promise<MqttClient> {
  const o = await tryConnect(broker.tlsUrl, pki.tls(identity));
  if (!o.ok) throw new Error(`${identity} could not connect: ${o.error}\n${broker.output()}`);
  t.teardown(() => o.client.endAsync());
  return o.client;
}

/** Collects every message a client receives. */
function inbox(c: MqttClient): Array<{ topic: string; payload: string }> {
  const got: Array<{ topic: string; payload: string }> = [];
  c.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }));
  return got;
}

/**
 * Subscribes and returns the SUBACK code. Mosquitto 2.0's acl_file grants every subscription
 * and enforces read rights when it delivers each message, so the tests below assert what
 * matters: a message the ACL forbids never arrives.
 */
async function subscribeCode(c: MqttClient, filter: string): Promise<number> {
  const granted = await c.subscribeAsync(filter, { qos: 1 });
  return granted[0]!.qos;
}

/** A QoS 1 publish: resolves to the PUBACK reason code (0 = accepted, 135 = not authorized). */
async function publishCode(c: MqttClient, topic: string, payload: string): Promise<number> {
  try {
    await c.publishAsync(topic, payload, { qos: 1 });
    return 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw err;
  }
}

t.test('make-ca.sh is idempotent and keeps private keys private', async (t) => {
  const before = pki.read('devices/dev-a.crt');
  execFileSync(path.join(repoRoot, 'scripts', 'make-ca.sh'), ['--out', pki.dir, 'dev-a:lab', 'dev-b:north', 'dev-c:lab'], { stdio: 'pipe' });
  t.same(pki.read('devices/dev-a.crt'), before, 'running again does not re-issue an existing certificate');
  for (const k of ['ca.key', 'broker.key', 'controller.key', 'devices/dev-a.key']) {
    t.equal(statSync(pki.file(k)).mode & 0o077, 0, `${k} is readable by its owner only`);
  }
  const subject = execFileSync('openssl', ['x509', '-in', pki.file('devices/dev-b.crt'), '-noout', '-subject']).toString();
  t.match(subject, /CN\s*=\s*dev-b/, 'the device certificate CN is its id');
  t.match(readFileSync(pki.file('acl'), 'utf8'), /user dev-b\ntopic read edge\/v1\/groups\/north\/models\/desired/, 'the ACL grants dev-b its group');
  for (const bad of ['groups', 'edge-controller', 'a/b', '+', 'x#']) {
    t.throws(() => execFileSync(path.join(repoRoot, 'scripts', 'make-ca.sh'), ['--out', pki.dir, bad], { stdio: 'pipe' }),
      `refuses to issue a device certificate named ${bad}`);
  }
});

t.test('a device connects with its certificate', async (t) => {
  const a = await connectAs(t, 'devices/dev-a');
  t.ok(a.connected);
});

t.test('a client without a certificate is refused', async (t) => {
  const o = await tryConnect(broker.tlsUrl, { ca: pki.read('ca.crt') });
  t.equal(o.ok, false, `refused: ${o.ok ? '' : o.error}`);
});

t.test('a client with a certificate from another CA is refused', async (t) => {
  const rogue = makePki(['dev-a']);
  t.teardown(() => rogue.remove());
  const o = await tryConnect(broker.tlsUrl, { ca: pki.read('ca.crt'), cert: rogue.read('devices/dev-a.crt'), key: rogue.read('devices/dev-a.key') });
  t.equal(o.ok, false, `a same-named certificate from a rogue CA is refused: ${o.ok ? '' : o.error}`);
});

t.test('there is no plaintext listener', async (t) => {
  const o = await tryConnect(`mqtt://127.0.0.1:${broker.port}`, { connectTimeout: 5000 });
  t.equal(o.ok, false, 'plain MQTT on the TLS port gets no CONNACK');
});

t.test('device A cannot read device B\'s commands; the controller can', async (t) => {
  const a = await connectAs(t, 'devices/dev-a');
  const b = await connectAs(t, 'devices/dev-b');
  const ctl = await connectAs(t, 'controller');
  const aGot = inbox(a);
  const bGot = inbox(b);
  const ctlGot = inbox(ctl);
  // A tries every way to see B's commands: exact, B's subtree, and a wildcard over devices.
  for (const f of ['edge/v1/dev-b/cmd', 'edge/v1/dev-b/#', 'edge/v1/+/cmd', 'edge/v1/#', '#']) await subscribeCode(a, f);
  t.ok(await subscribeCode(b, 'edge/v1/dev-b/cmd') < 0x80);
  t.ok(await subscribeCode(ctl, 'edge/v1/dev-b/cmd') < 0x80, 'the controller may subscribe to B\'s cmd');
  t.equal(await publishCode(ctl, 'edge/v1/dev-b/cmd', 'for-b'), 0, 'the controller may publish to B\'s cmd');
  t.equal(await publishCode(ctl, 'edge/v1/dev-a/cmd', 'for-a'), 0);
  await waitFor(() => aGot.some((m) => m.payload === 'for-a') && bGot.some((m) => m.payload === 'for-b') && ctlGot.some((m) => m.payload === 'for-b'),
    { timeoutMs: 10_000, what: 'A\'s own command at A, and B\'s at B and at the controller' });
  t.notOk(aGot.some((m) => m.payload === 'for-b'), 'A never receives B\'s command, through any filter');
  t.ok(aGot.every((m) => m.topic.startsWith('edge/v1/dev-a/')), `A received only its own topics: ${[...new Set(aGot.map((m) => m.topic))].join(', ')}`);
});

t.test('device A cannot publish into device B\'s topics; the controller can', async (t) => {
  const a = await connectAs(t, 'devices/dev-a');
  const b = await connectAs(t, 'devices/dev-b');
  const ctl = await connectAs(t, 'controller');
  const bGot = inbox(b);
  const ctlGot = inbox(ctl);
  await subscribeCode(b, 'edge/v1/dev-b/cmd');
  await subscribeCode(ctl, 'edge/v1/+/models/reported');

  // A forges a command to B and a report in B's name, at QoS 1 (refused in the PUBACK) and
  // at QoS 0 (silently dropped); then sends its own report as a marker.
  t.equal(await publishCode(a, 'edge/v1/dev-b/cmd', 'forged-cmd'), 135, 'the broker answers "not authorized" to A\'s command to B');
  t.equal(await publishCode(a, 'edge/v1/dev-b/models/reported', 'forged-report'), 135, 'and to A\'s report in B\'s name');
  await a.publishAsync('edge/v1/dev-b/cmd', 'forged-cmd-qos0', { qos: 0 });
  t.equal(await publishCode(a, 'edge/v1/dev-a/models/reported', 'a-report'), 0, 'A may publish its own report');
  t.equal(await publishCode(ctl, 'edge/v1/dev-b/cmd', 'real-cmd'), 0, 'the controller may command B');
  await waitFor(() => bGot.some((m) => m.payload === 'real-cmd') && ctlGot.some((m) => m.payload === 'a-report'),
    { timeoutMs: 10_000, what: 'the controller\'s command at B and A\'s own report at the controller' });
  t.notOk(bGot.some((m) => m.payload.startsWith('forged')), 'B never receives a command forged by A');
  t.notOk(ctlGot.some((m) => m.payload === 'forged-report'), 'the controller never receives a report A forged in B\'s name');
});

t.test('a device reads only its own groups\' desired state, and cannot write any', async (t) => {
  const a = await connectAs(t, 'devices/dev-a');
  const ctl = await connectAs(t, 'controller');
  const aGot = inbox(a);
  const ctlGot = inbox(ctl);
  await subscribeCode(a, 'edge/v1/groups/lab/models/desired');
  await subscribeCode(a, 'edge/v1/groups/north/models/desired');
  await subscribeCode(ctl, 'edge/v1/groups/+/models/desired');
  t.equal(await publishCode(a, 'edge/v1/groups/lab/models/desired', 'forged-desired'), 135, 'a device cannot publish its group\'s desired state');
  t.equal(await publishCode(ctl, 'edge/v1/groups/north/models/desired', 'north-desired'), 0);
  t.equal(await publishCode(ctl, 'edge/v1/groups/lab/models/desired', 'lab-desired'), 0);
  await waitFor(() => aGot.some((m) => m.payload === 'lab-desired') && ctlGot.some((m) => m.payload === 'north-desired'),
    { timeoutMs: 10_000, what: 'lab\'s desired state at A and north\'s at the controller' });
  t.notOk(aGot.some((m) => m.payload === 'north-desired'), 'A never receives the desired state of a group it is not in');
  t.notOk(aGot.concat(ctlGot).some((m) => m.payload === 'forged-desired'), 'the forged desired state reaches no one');
});

t.test('a revoked device can neither read nor write anything, even its own topics', async (t) => {
  const c0 = await connectAs(t, 'devices/dev-c');
  const c0Got = inbox(c0);
  await subscribeCode(c0, 'edge/v1/dev-c/cmd');
  const ctl = await connectAs(t, 'controller');
  t.equal(await publishCode(ctl, 'edge/v1/dev-c/cmd', 'before'), 0);
  await waitFor(() => c0Got.some((m) => m.payload === 'before'), { what: 'dev-c receives its command before revocation' });
  await c0.endAsync();

  execFileSync(path.join(repoRoot, 'scripts', 'make-ca.sh'), ['--out', pki.dir, '--revoke', 'dev-c'], { stdio: 'pipe' });
  t.match(readFileSync(pki.file('acl'), 'utf8'), /user dev-c\ntopic deny #/);
  installBrokerFiles(pki);
  await broker.restart();

  const c = await connectAs(t, 'devices/dev-c');
  const ctl2 = await connectAs(t, 'controller');
  const a = await connectAs(t, 'devices/dev-a');
  const cGot = inbox(c);
  const ctlGot = inbox(ctl2);
  const aGot = inbox(a);
  await subscribeCode(c, 'edge/v1/dev-c/cmd');
  await subscribeCode(c, 'edge/v1/groups/lab/models/desired');
  await subscribeCode(ctl2, 'edge/v1/+/status');
  await subscribeCode(a, 'edge/v1/dev-a/cmd');
  t.equal(await publishCode(c, 'edge/v1/dev-c/status', 'revoked-status'), 135, 'the revoked device cannot publish on its own topics');
  t.equal(await publishCode(ctl2, 'edge/v1/dev-c/cmd', 'after'), 0);
  t.equal(await publishCode(ctl2, 'edge/v1/groups/lab/models/desired', 'lab-after'), 0);
  t.equal(await publishCode(ctl2, 'edge/v1/dev-a/cmd', 'a-after'), 0);
  await waitFor(() => aGot.some((m) => m.payload === 'a-after'), { what: 'dev-a (not revoked) still receives its command' });
  t.notOk(cGot.length, `the revoked device receives nothing (got ${cGot.map((m) => m.payload).join(', ')})`);
  t.notOk(ctlGot.some((m) => m.payload === 'revoked-status'), 'its publish reached no one');
});

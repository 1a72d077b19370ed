// Provisioning by claim, rotation and revocation (issue 23, docs/provisioning.md) against the
// shipped Mosquitto production config (mutual TLS, require_certificate, CN as username, ACL
// file) plus the CRL, the controller's provisioning service, and in-process agents that hold
// only the batch's claim credential.
import 'reflect-metadata';
import t, { type Test } from 'tap';
import { X509Certificate, webcrypto } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import type { MqttClient } from 'mqtt';
import { makePki, tryConnect } from './helpers/pki.js';
import { waitFor } from './helpers/wait.js';
import { startProvisioningBroker } from './helpers/provisioning-broker.js';
import { makeAgent, type TestAgent } from './fleet-support.js';
import { ProvisioningService } from '../controller/provisioning/service.js';
import { addClaim, disconnectDevice, revokeDevice } from '../controller/provisioning/admin.js';
import { ProvisioningStore } from '../controller/provisioning/state.js';
import { checkCsr, issueClientCert, loadCa } from '../controller/provisioning/ca.js';
import { applyBrokerFiles } from '../controller/provisioning/broker-files.js';
import { FleetErrors } from '../protocol/errors.js';

t.setTimeout(240_000);
x509.cryptoProvider.set(webcrypto as never);

const pki = makePki([]);
t.teardown(() => pki.remove());
const { broker, url, etc, work, provDir } = await startProvisioningBroker(pki, 'edge-prov-', (f) => t.teardown(f));
const ca = pki.file('ca.crt');

const service = new ProvisioningService(provDir, { broker: url, clientId: 'edge-controller-test', tls: pki.tls('controller') as { ca: Buffer; cert: Buffer; key: Buffer } });
await service.start();
t.teardown(() => service.stop());

const claims = path.join(work.dir, 'image');
await addClaim(provDir, 'claim-lab', { pattern: 'pi-[0-9]+', groups: ['lab'], lifetimeSeconds: 3600, perHour: 50, claimLifetimeSeconds: 86_400, out: claims });
await addClaim(provDir, 'claim-short', { pattern: 'pi-5[0-9]', lifetimeSeconds: 24, perHour: 50, claimLifetimeSeconds: 86_400, out: claims });
const claimTls = (name: string) => ({ ca: readFileSync(ca), cert: readFileSync(path.join(claims, `${name}.crt`)), key: readFileSync(path.join(claims, `${name}.key`)) });

/** The broker has re-read the ACL with the claim in it: a claim client may publish its request. */
async function claimClient(t: Test, name = 'claim-lab'): Promise<MqttClient> {
  const o = await tryConnect(url, { ...claimTls(name), clientId: `${name}-probe-${Math.random().toString(36).slice(2, 6)}` });
  if (!o.ok) throw new Error(`${name} could not connect: ${o.error}\n${broker.output()}`);
  t.teardown(() => o.client.endAsync());
  return o.client;
}

async function publishCode(c: MqttClient, topic: string, payload: string | Buffer): Promise<number> {
  try {
    await c.publishAsync(topic, payload, { qos: 1 });
    return 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw err;
  }
}

function provisionedAgent(t: Test, id: string, claim = 'claim-lab', extra: Record<string, unknown> = {}): TestAgent {
  const a = makeAgent(url, id, {
    mqtt: { ca, groups: ['lab'], reconnectMinMs: 50, reconnectMaxMs: 300, connectTimeoutMs: 5000 },
    provisioning: { claimCert: path.join(claims, `${claim}.crt`), claimKey: path.join(claims, `${claim}.key`), retryMs: 300, requestTimeoutMs: 5000, ...extra },
  });
  t.teardown(() => a.stop());
  return a;
}
const identity = (a: TestAgent) => a.link.status().identity as { provisioned: boolean; serial: string | null; renewals: number; lastError: string | null };
/** What each enrolled device holds (what a thief of the device would hold). */
const held = new Map<string, { ca: Buffer; cert: Buffer; key: Buffer }>();
const aclText = (): string => readFileSync(path.join(etc, 'acl'), 'utf8');

async function csrFor(cn: string): Promise<string> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${cn}`, keys: keys as never, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as never });
  return csr.toString('pem');
}

/** Sends one request with a claim client and returns the controller's answer. */
async function ask(c: MqttClient, claim: string, topicDevice: string, body: string | Buffer): Promise<{ ok: boolean; certificate?: string; error?: { code: string; message: string } }> {
  const res = `edge/provision/v1/${claim}/${topicDevice}/res`;
  const got = new Promise<Buffer>((resolve) => c.on('message', (topic, payload) => { if (topic === res) resolve(payload); }));
  await c.subscribeAsync(res, { qos: 1 });
  const code = await publishCode(c, `edge/provision/v1/${claim}/${topicDevice}/req`, body);
  if (code !== 0) throw new Error(`the broker refused the claim's own request (${code})`);
  return JSON.parse((await Promise.race([got, new Promise<never>((_, r) => setTimeout(() => r(new Error('no answer in 10 s')), 10_000))])).toString());
}

t.test('three agents holding only the claim credential end up connected with their own certificates', async (t) => {
  const agents = ['pi-1', 'pi-2', 'pi-3'].map((id) => provisionedAgent(t, id));
  for (const a of agents) await a.agent.start();
  for (const a of agents) {
    const id = a.agent.config.deviceId;
    await waitFor(() => a.link.state === 'connected' && identity(a).provisioned, { timeoutMs: 60_000, what: () => `${id} enrolled and connected (${JSON.stringify(a.link.status())})` });
    const dir = path.join(a.agent.config.dataDir, 'identity', 'current');
    t.equal(statSync(path.join(dir, 'device.key')).mode & 0o777, 0o600, `${id}: its private key is mode 600 in the state directory`);
    const cert = new X509Certificate(readFileSync(path.join(dir, 'device.crt')));
    t.match(cert.subject, new RegExp(`CN=${id}$`), `${id}: the certificate is for its own id`);
    t.ok(cert.verify(new X509Certificate(readFileSync(ca)).publicKey), `${id}: signed by the fleet CA`);
    held.set(id, { ca: readFileSync(ca), cert: readFileSync(path.join(dir, 'device.crt')), key: readFileSync(path.join(dir, 'device.key')) });
  }
  const state = new ProvisioningStore(provDir).read();
  t.same(Object.keys(state.devices).sort(), ['pi-1', 'pi-2', 'pi-3'], 'the controller recorded the three devices');
  t.match(aclText(), /user pi-2\ntopic read edge\/v1\/groups\/lab\/models\/desired/, 'the ACL grants each its claim\'s groups');
  // The device's connection is its own identity: a device-only topic works.
  const ctl = await tryConnect(url, pki.tls('controller'));
  if (!ctl.ok) throw new Error(ctl.error);
  t.teardown(() => ctl.client.endAsync());
  const seen = new Set<string>();
  ctl.client.on('message', (topic, payload) => { if (/"online"|online/.test(payload.toString())) seen.add(topic.split('/')[2]!); });
  await ctl.client.subscribeAsync('edge/v1/+/status', { qos: 0 });
  await waitFor(() => seen.size >= 3, { timeoutMs: 15_000, what: () => `online status of the three devices (${[...seen].join(',')})` });
});

t.test('the claim credential can do nothing but ask for a certificate under its own name', async (t) => {
  const c = await claimClient(t);
  const got: string[] = [];
  c.on('message', (topic) => got.push(topic));
  for (const f of ['#', 'edge/v1/#', 'edge/provision/v1/#']) await c.subscribeAsync(f, { qos: 1 });
  for (const topic of ['edge/v1/pi-1/status', 'edge/v1/claim-lab/status', 'edge/v1/pi-1/cert/req', 'edge/v1/groups/lab/models/desired',
    'edge/provision/v1/claim-short/pi-55/req', 'edge/provision/v1/claim-lab/pi-9/res', 'anything/else']) {
    t.equal(await publishCode(c, topic, '{}'), 135, `the broker refuses the claim's publish to ${topic}`);
  }
  const ctl = await tryConnect(url, pki.tls('controller'));
  if (!ctl.ok) throw new Error(ctl.error);
  t.teardown(() => ctl.client.endAsync());
  await ctl.client.publishAsync('edge/v1/pi-1/cmd', JSON.stringify({ id: 'x', name: 'ping' }), { qos: 1 });
  await ctl.client.publishAsync('edge/provision/v1/claim-short/pi-55/res', '{"id":null,"ok":false}', { qos: 1 });
  const a = await ask(c, 'claim-lab', 'pi-9', '{}');
  t.equal(a.error?.code, FleetErrors.ENROLL_BAD_REQUEST.code, 'its own request is answered (here: refused as malformed)');
  t.same([...new Set(got)], ['edge/provision/v1/claim-lab/pi-9/res'], 'it received nothing but its own answer, through every filter');
});

t.test('a device whose id the policy refuses gets a clear refusal and no certificate', async (t) => {
  const before = aclText();
  const a = provisionedAgent(t, 'cam-1');
  await a.agent.start();
  await waitFor(() => /EDGE_ENROLL_REFUSED/.test(identity(a).lastError ?? ''), { timeoutMs: 30_000, what: () => `the refusal (${JSON.stringify(identity(a))})` });
  t.match(identity(a).lastError, /claim "claim-lab" allows only ids matching pi-\[0-9\]\+/, 'the reason names the policy');
  t.not(a.link.state, 'connected');
  t.notOk(existsSync(path.join(a.agent.config.dataDir, 'identity', 'current')), 'no certificate on the device');
  t.notOk(new ProvisioningStore(provDir).read().devices['cam-1'], 'none issued by the controller');
  t.equal(aclText(), before, 'the ACL is unchanged');
});

t.test('bad input at the enrollment entry point is refused with a clear message and changes nothing', async (t) => {
  const c = await claimClient(t);
  const before = { acl: aclText(), devices: JSON.stringify(new ProvisioningStore(provDir).read().devices) };
  const cases: Array<[string, string, string | Buffer, string, RegExp]> = [
    ['not JSON', 'pi-20', 'not json', FleetErrors.ENROLL_BAD_REQUEST.code, /not valid JSON/],
    ['malformed CSR', 'pi-21', JSON.stringify({ id: 'r1', deviceId: 'pi-21', csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }), FleetErrors.ENROLL_BAD_CSR.code, /not a PKCS#10 request/],
    ['CSR for another device id', 'pi-22', JSON.stringify({ id: 'r2', deviceId: 'pi-22', csr: await csrFor('pi-1') }), FleetErrors.ENROLL_BAD_CSR.code, /subject CN is "pi-1", not the device id "pi-22"/],
    ['body for another device than the topic', 'pi-23', JSON.stringify({ id: 'r3', deviceId: 'pi-24', csr: await csrFor('pi-24') }), FleetErrors.ENROLL_BAD_REQUEST.code, /sent on the topic of "pi-23"/],
    ['oversized request', 'pi-25', Buffer.alloc(9000, 0x20), FleetErrors.ENROLL_TOO_LARGE.code, /9000 bytes is larger than the limit of 8192/],
    ['a CSR whose signature does not verify', 'pi-26', JSON.stringify({ id: 'r4', deviceId: 'pi-26', csr: (await csrFor('pi-26')).replace(/(\n[A-Za-z0-9+/]{10})[A-Za-z0-9+/]/, (m, p: string) => p + (m.endsWith('A') ? 'B' : 'A')) }), FleetErrors.ENROLL_BAD_CSR.code, /./],
    ['a revoked-or-reserved id: the claim\'s own name', 'claim-lab', JSON.stringify({ id: 'r5', deviceId: 'claim-lab', csr: await csrFor('claim-lab') }), FleetErrors.ENROLL_REFUSED.code, /reserved/],
  ];
  for (const [what, device, body, code, message] of cases) {
    const a = await ask(c, 'claim-lab', device, body);
    t.equal(a.ok, false, `${what}: refused`);
    t.equal(a.error?.code, code, `${what}: ${a.error?.message}`);
    t.match(a.error?.message, message);
    t.notOk(a.certificate, `${what}: no certificate`);
  }
  // The claim's hourly limit: the second enrollment within the hour is refused.
  await addClaim(provDir, 'claim-one', { pattern: 'pi-9[0-9]', lifetimeSeconds: 3600, perHour: 1, claimLifetimeSeconds: 86_400, out: claims });
  const one = await claimClient(t, 'claim-one');
  t.ok((await ask(one, 'claim-one', 'pi-90', JSON.stringify({ id: 'q1', deviceId: 'pi-90', csr: await csrFor('pi-90') }))).ok, 'the first enrollment of claim-one is answered with a certificate');
  const stateAfterOne = { acl: aclText(), devices: JSON.stringify(new ProvisioningStore(provDir).read().devices) };
  const limited = await ask(one, 'claim-one', 'pi-91', JSON.stringify({ id: 'q2', deviceId: 'pi-91', csr: await csrFor('pi-91') }));
  t.equal(limited.error?.code, FleetErrors.ENROLL_RATE_LIMITED.code, `the second within the hour is refused: ${limited.error?.message}`);
  t.equal(aclText(), stateAfterOne.acl, 'the ACL is unchanged by the refused one');
  t.equal(JSON.stringify(new ProvisioningStore(provDir).read().devices), stateAfterOne.devices, 'no device added by the refused one');
  before.acl = stateAfterOne.acl;
  before.devices = stateAfterOne.devices;
  // A claim the controller does not know (here asked directly: the broker lets no unknown claim publish).
  await t.rejects(service.enroll('claim', 'claim-nope', { id: 'r6', deviceId: 'pi-30', csr: await csrFor('pi-30') }), { code: FleetErrors.ENROLL_UNKNOWN_CLAIM.code }, 'an unknown claim is refused');
  // A claim certificate from another CA cannot even connect.
  const rogue = makePki([]);
  t.teardown(() => rogue.remove());
  const o = await tryConnect(url, { ca: readFileSync(ca), cert: rogue.read('controller.crt'), key: rogue.read('controller.key') });
  t.equal(o.ok, false, 'a credential from another CA is refused by the broker');
  t.equal(aclText(), before.acl, 'the ACL is unchanged');
  t.equal(JSON.stringify(new ProvisioningStore(provDir).read().devices), before.devices, 'no device was added or changed');
});

t.test('a short-lived certificate is renewed before expiry with one reconnect, and the old one kept until the new works', async (t) => {
  const ctl = await tryConnect(url, pki.tls('controller'));
  if (!ctl.ok) throw new Error(ctl.error);
  t.teardown(() => ctl.client.endAsync());
  const statuses: string[] = [];
  ctl.client.on('message', (_topic, payload) => statuses.push(String((JSON.parse(payload.toString()) as { state?: unknown }).state)));
  await ctl.client.subscribeAsync('edge/v1/pi-50/status', { qos: 1 });
  const a = provisionedAgent(t, 'pi-50', 'claim-short', { renewAt: 0.4, renewJitter: 0.05 });
  await a.agent.start();
  await waitFor(() => a.link.state === 'connected' && identity(a).provisioned, { timeoutMs: 60_000, what: 'pi-50 enrolled' });
  await waitFor(() => statuses.includes('online'), { timeoutMs: 10_000, what: 'pi-50 online at the controller' });
  const first = identity(a).serial;
  const connects0 = a.link.status().connects as number;
  const renewAt = Date.parse(String((a.link.status().identity as { renewAt: string }).renewAt));
  const notAfter = Date.parse(String((a.link.status().identity as { notAfter: string }).notAfter));
  t.ok(renewAt < notAfter - 10_000 && renewAt > Date.now() - 3000, `renewal planned well before expiry: in ${((renewAt - Date.now()) / 1000).toFixed(1)} s, expiry in ${((notAfter - Date.now()) / 1000).toFixed(1)} s`);
  await waitFor(() => identity(a).renewals >= 1 && a.link.state === 'connected', { timeoutMs: 60_000, what: () => `a renewal (${JSON.stringify(a.link.status())})` });
  t.not(identity(a).serial, first, 'the device now uses a new certificate');
  t.equal(a.link.status().connects, connects0 + 1, 'exactly one reconnect for the renewal');
  const gens = readdirSync(path.join(a.agent.config.dataDir, 'identity')).filter((e) => e.startsWith('gen-'));
  t.equal(gens.length, 1, 'the old key and certificate are removed once the new one works');
  const issued = new ProvisioningStore(provDir).read().devices['pi-50']!.certs;
  t.equal(issued.length, 2, 'the controller issued two certificates');
  t.equal(issued.at(-1)!.serial.toLowerCase(), String(identity(a).serial).toLowerCase(), 'the device holds the newest');
  await waitFor(() => statuses.filter((s) => s === 'online').length >= 2, { timeoutMs: 10_000, what: () => `the status after the reconnect (${statuses.join(',')})` });
  t.notOk(statuses.includes('offline'), `the controller never saw the device offline (no Last Will on the renewal reconnect): ${statuses.join(',')}`);
});

t.test('a renewed certificate the broker refuses is dropped: the agent reconnects with the old one', async (t) => {
  const a = provisionedAgent(t, 'pi-51', 'claim-short', { renewAt: 0.4, renewJitter: 0.05 });
  await a.agent.start();
  await waitFor(() => a.link.state === 'connected' && identity(a).provisioned, { timeoutMs: 60_000, what: 'pi-51 enrolled' });
  const first = identity(a).serial;
  const connects0 = a.link.status().connects as number;
  // The real service steps aside; a stand-in answers the renewal with a certificate that is
  // signed by the fleet CA but already on the CRL, so only the broker can tell it is bad.
  await service.stop();
  t.teardown(() => service.start());
  const ctl = await tryConnect(url, pki.tls('controller'));
  if (!ctl.ok) throw new Error(ctl.error);
  t.teardown(() => ctl.client.endAsync());
  const ca = await loadCa(pki.file('ca.crt'), pki.file('ca.key'));
  let answered = false;
  ctl.client.on('message', (_topic, payload) => void (async () => {
    const req = JSON.parse(payload.toString()) as { id: string; csr: string };
    const csr = await checkCsr(req.csr, 'pi-51');
    const issued = await issueClientCert(ca, 'pi-51', csr.publicKey, 3600);
    await new ProvisioningStore(provDir).update(async (s) => {
      s.revokedSerials.push({ serial: issued.serial, at: new Date().toISOString() });
      await applyBrokerFiles(s, ca);
      return { write: true, value: undefined };
    });
    await ctl.client.publishAsync('edge/v1/pi-51/cert/res', JSON.stringify({ id: req.id, ok: true, certificate: issued.pem, notAfter: issued.notAfter }), { qos: 1 });
    answered = true;
  })());
  await ctl.client.subscribeAsync('edge/v1/pi-51/cert/req', { qos: 1 });
  await waitFor(() => answered, { timeoutMs: 30_000, what: 'the renewal request answered by the stand-in' });
  await waitFor(() => /did not accept the renewed certificate/.test(identity(a).lastError ?? '') && a.link.state === 'connected',
    { timeoutMs: 40_000, what: () => `the agent back on its old certificate (${JSON.stringify(a.link.status())})` });
  t.equal(identity(a).serial, first, 'it still uses its first certificate');
  t.equal(identity(a).renewals, 0, 'no renewal counted');
  t.ok((a.link.status().connects as number) >= connects0 + 1, 'connected again with the old certificate');
  const gens = readdirSync(path.join(a.agent.config.dataDir, 'identity')).filter((e) => e.startsWith('gen-'));
  t.equal(gens.length, 1, 'the refused key and certificate were removed');
  await a.stop();
});

t.test('a revoked device is refused by the broker and its re-enrollment refused', async (t) => {
  const creds = held.get('pi-3');
  if (!creds) throw new Error('pi-3 was not enrolled by the first test');
  // pi-3's agent stopped with its test; its key and certificate are what a thief would hold.
  const before = await tryConnect(url, { ...creds, clientId: 'pi-3' });
  t.ok(before.ok, 'before revocation the broker accepts pi-3');
  if (before.ok) await before.client.endAsync();
  await revokeDevice(provDir, 'pi-3');
  t.match(aclText(), /user pi-3\ntopic deny #/, 'its ACL block denies everything');
  t.match(readFileSync(path.join(etc, 'crl.pem'), 'utf8'), /BEGIN X509 CRL/, 'the CRL is rewritten');
  const refusal = await waitFor(async () => {
    const o = await tryConnect(url, { ...creds, clientId: 'pi-3' });
    if (o.ok) await o.client.endAsync();
    return o.ok ? undefined : o.error;
  }, { timeoutMs: 15_000, what: 'the broker refusing pi-3\'s certificate after the reload' });
  // Mosquitto 2.0.11 re-reads crlfile on SIGHUP: no restart is needed.
  t.match(refusal, /certificate revoked/i, `the broker refuses the revoked certificate at the TLS handshake: ${refusal}`);
  const other = await tryConnect(url, { ...held.get('pi-1')!, clientId: 'pi-1-probe' });
  t.ok(other.ok, 'a device that is not revoked still connects');
  if (other.ok) await other.client.endAsync();
  const c = await claimClient(t);
  const a = await ask(c, 'claim-lab', 'pi-3', JSON.stringify({ id: 'again', deviceId: 'pi-3', csr: await csrFor('pi-3') }));
  t.equal(a.error?.code, FleetErrors.ENROLL_REVOKED.code, `re-enrollment through the claim is refused: ${a.error?.message}`);
  await t.rejects(service.enroll('renewal', undefined, { id: 'r', deviceId: 'pi-3', csr: await csrFor('pi-3') }), { code: FleetErrors.ENROLL_REVOKED.code }, 'renewal is refused');
});

t.test('a device revoked while connected is cut off and cannot come back', async (t) => {
  const a = provisionedAgent(t, 'pi-4');
  await a.agent.start();
  await waitFor(() => a.link.state === 'connected' && identity(a).provisioned, { timeoutMs: 60_000, what: 'pi-4 enrolled and connected' });
  await revokeDevice(provDir, 'pi-4');
  await disconnectDevice(url, pki.tls('controller') as { ca: Buffer; cert: Buffer; key: Buffer }, 'pi-4');
  await waitFor(() => a.link.state !== 'connected', { timeoutMs: 15_000, what: 'pi-4 disconnected' });
  await waitFor(() => /certificate revoked/i.test(String(a.link.status().lastError ?? '')) && (a.link.status().reconnectAttempt as number) >= 2,
    { timeoutMs: 20_000, what: () => `pi-4's reconnects refused as revoked (${JSON.stringify(a.link.status())})` });
  t.not(a.link.state, 'connected', 'the revoked device stays off the broker');
});

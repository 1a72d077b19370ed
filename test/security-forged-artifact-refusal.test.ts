// One forged "manifest refused" artifact answer no longer fails a deploy for good (issue 26,
// item 7). Anyone who can publish on a device's artifacts/res answers its first manifest
// request with a refusal before the controller is there; the device reports the failure,
// tries again (artifact failures are retried like the link's, at most ARTIFACT_ATTEMPTS
// times), and installs the model once the real controller answers. Real parts: the agent
// daemon, Mosquitto, the controller on its own SQLite file.
import t from 'tap';
import path from 'node:path';
import mqtt from 'mqtt';
import { encodeFrame } from '../protocol/frame.js';
import { topics } from '../protocol/topics.js';
import { FleetController } from '../controller/serve.js';
import { FleetStore } from '../controller/store.js';
import { publishPackage } from '../controller/publish.js';
import { desiredWith } from '../controller/requests.js';
import { spawnAgent } from './helpers/agent.js';
import { FP32, FP32_VERSION, tempDir } from './helpers/model-packages.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(90_000);

interface Report { name: string; version: string; state: string; code?: string; reason?: string }

t.test('a forged artifact refusal is retried; the real controller\'s answer installs the model', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const store = new FleetStore(path.join(tempDir(), 'fleet.db'));
  t.teardown(() => store.close());
  const art = await publishPackage(store, FP32, { chunkSize: 16 * 1024 });

  // The forger answers every artifact request of the device with a refusal, until told to stop.
  const forger = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'forger', reconnectPeriod: 0 });
  t.teardown(() => forger.endAsync());
  let forging = true;
  let forged = 0;
  forger.on('message', (_topic, payload, packet) => {
    if (!forging) return;
    const req = JSON.parse(payload.toString()) as { id: string; op: string };
    forged++;
    void forger.publishAsync(topics.artifactRes('art-dev'), encodeFrame({ id: req.id, ok: false, op: req.op, error: { code: 'EDGE_FLEET_UNKNOWN_ARTIFACT', message: 'manifest refused' } }),
      { qos: 1, properties: packet.properties?.correlationData ? { correlationData: packet.properties.correlationData } : undefined });
  });
  await forger.subscribeAsync(topics.artifactReq('art-dev'), { qos: 1 });

  const agent = spawnAgent({
    deviceId: 'art-dev',
    security: { requireSignedPackages: false },
    mqtt: { url: broker.url, reconnectMinMs: 50, reconnectMaxMs: 500, keepaliveSeconds: 5 },
  });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  const report = async (): Promise<Report | undefined> =>
    (((await (await fetch(`${url}/v1/status`)).json()) as { fleet: { models: Report[] } }).fleet.models).find((m) => m.name === 'digits');

  await forger.publishAsync(topics.desired('art-dev'), JSON.stringify(desiredWith(store, { device: 'art-dev' }, art)), { qos: 1, retain: true });
  t.teardown(() => forger.publishAsync(topics.desired('art-dev'), '', { qos: 1, retain: true }).catch(() => undefined));
  const failed = await waitFor(async () => { const r = await report(); return r?.state === 'failed' ? r : undefined; }, { timeoutMs: 20_000, what: 'the forged refusal to fail the first attempt' });
  t.equal(failed.code, 'EDGE_FLEET_ARTIFACT', `the first attempt failed on the forged answer: ${failed.reason}`);
  t.equal(forged, 1, 'one forged answer so far');

  // The forger stops; the real controller comes.
  forging = false;
  const ctl = new FleetController(store, { broker: broker.url, clientId: 'art-ctl' });
  await ctl.start();
  t.teardown(() => ctl.stop());
  const active = await waitFor(async () => { const r = await report(); return r && /^(active|probation|committed)$/.test(r.state) ? r : undefined; },
    { timeoutMs: 30_000, what: 'the retried deploy to install and activate the model' });
  t.equal(active.version, FP32_VERSION, `digits@${FP32_VERSION} is ${active.state} after the retry`);
  t.ok(ctl.counters.chunksServed > 0, 'from the real controller\'s chunks');
});

// Model delivery end to end against Mosquitto: a signed package published to the
// controller and deployed to a device is downloaded over the broker in chunks, verified
// (chunk and whole sha256, signature, package checks), installed beside the current version,
// activated, and every step is reported. A partial download resumes after its last good chunk.
import t from 'tap';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, signPackage } from '../agent/security/signing.js';
import { publishPackage } from '../controller/publish.js';
import { deploy, sendCommand } from '../controller/requests.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { SERVING, startAgent, startController, tempDir, watcher } from './fleet-support.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FP32 = path.join(root, 'models/digits-fp32');

/** A signed copy of the sample package with another version number. */
async function signedVersion(into: string, version: string, privateKeyPem: string): Promise<string> {
  const dir = path.join(into, `digits-${version}`);
  cpSync(FP32, dir, { recursive: true });
  const mf = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  mf.version = version;
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(mf, null, 2));
  await signPackage(dir, privateKeyPem);
  return dir;
}

interface Report { models: { name: string; version: string; state: string; reason?: string; previous?: string; progress?: { done: number; total: number; resumedFrom: number } }[] }

t.test('deploy -> download -> verify -> activate -> reported', async (t) => {
  const work = tempDir('edge-fleet-models-');
  t.teardown(() => work.remove());
  const keys = generateKeyPair();
  const v100 = await signedVersion(work.dir, '1.0.0', keys.privateKeyPem);
  const v110 = await signedVersion(work.dir, '1.1.0', keys.privateKeyPem);
  const v120 = await signedVersion(work.dir, '1.2.0', keys.privateKeyPem);
  const v130 = await signedVersion(work.dir, '1.3.0', keys.privateKeyPem);

  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const c = await startController(broker.url);
  t.teardown(() => c.stop());
  const a = await startAgent(broker.url, 'model-dev', {
    models: [{ name: 'digits', package: v100 }],
    security: { requireSignedPackages: true, trustedKeys: [keys.publicKeyPem] },
    mqtt: { groups: ['lab'] },
  });
  t.teardown(() => a.stop());
  await waitFor(() => a.agent.models.list().find((m) => m.name === 'digits' && m.ready), { timeoutMs: 30_000, what: 'digits 1.0.0 loaded' });
  const wire = await watcher(broker.url, ['edge/v1/model-dev/models/reported']);
  t.teardown(() => wire.close());

  await t.test('a deployed version becomes active and each step is reported', async (t) => {
    const art = await publishPackage(c.store, v110, { chunkSize: 4096 });
    t.equal(art.version, '1.1.0', 'name and version come from the package manifest');
    t.ok(art.chunks.length > 4, `split into ${art.chunks.length} chunks`);
    await deploy(c.ctl.client!, c.store, { device: 'model-dev' }, art);

    await waitFor(() => (c.store.device('model-dev')?.reported as Report | null)?.models.find((m) => m.version === '1.1.0' && SERVING.test(m.state)),
      { timeoutMs: 30_000, what: () => `1.1.0 reported active (${JSON.stringify(c.store.device('model-dev')?.reported)})` });
    const states = wire.messages.map((m) => (JSON.parse(m.payload.toString()) as Report).models.find((x) => x.name === 'digits'))
      .filter((m) => m?.version === '1.1.0').map((m) => m!.state);
    const steps = states.filter((s, i) => s !== states[i - 1]);
    t.same(steps.slice(0, 3), ['downloading', 'verifying', 'installed'], `reported: downloading, verifying, installed, then serving (${steps.join(', ')})`);
    t.match(steps[3], SERVING, 'then active (or on probation under the rollout slots)');
    const active = a.agent.models.list().find((m) => m.name === 'digits');
    t.equal(active?.version, '1.1.0', 'the runtime serves 1.1.0');
    t.equal((active?.previous as { version: string } | undefined)?.version, '1.0.0', '1.0.0 is kept for rollback');
    const installed = path.join(a.agent.config.dataDir, 'models/digits/1.1.0');
    t.ok(existsSync(path.join(installed, 'manifest.json')) && existsSync(path.join(installed, 'model.onnx')), 'installed under dataDir/models/NAME/VERSION');
    const status = await waitFor(() => {
      const s = c.store.device('model-dev')?.status as { models?: { name: string; version: string }[] } | undefined;
      return s?.models?.some((m) => m.version === '1.1.0') && s;
    }, { what: 'retained status with the new version' });
    t.ok(status, 'the status message lists 1.1.0');
  });

  await t.test('a partial download resumes after its last verified chunk', async (t) => {
    const art = await publishPackage(c.store, v120, { chunkSize: 1024 });
    const bytes = Buffer.concat(art.chunks.map((_, i) => c.store.chunk(art.sha256, i)!));
    // An earlier attempt got 10 good chunks, then a damaged one, then the link dropped.
    const parent = path.join(a.agent.config.dataDir, 'models/digits');
    mkdirSync(parent, { recursive: true });
    const damaged = Buffer.from(bytes.subarray(0, 12 * 1024));
    damaged[10 * 1024 + 5] ^= 0xff;
    writeFileSync(path.join(parent, `.1.2.0.${art.sha256.slice(0, 12)}.partial`), damaged);
    const served = c.ctl.counters.chunksServed;
    await deploy(c.ctl.client!, c.store, { device: 'model-dev' }, art);
    const done = await waitFor(() => (c.store.device('model-dev')?.reported as Report | null)?.models.find((m) => m.version === '1.2.0' && SERVING.test(m.state)),
      { timeoutMs: 30_000, what: '1.2.0 active' });
    t.equal(done.progress?.resumedFrom, 10, 'resumed at chunk 10, the first that failed its hash');
    t.equal(c.ctl.counters.chunksServed - served, art.chunks.length - 10, 'only the missing chunks were fetched');
    t.equal(a.agent.models.list().find((m) => m.name === 'digits')?.version, '1.2.0');
  });

  await t.test('models.activate and models.rollback by command', async (t) => {
    const send = (name: string, args: unknown) => sendCommand(c.ctl.client!, c.ctl.protocolVersion, 'model-dev', name, args);
    const version = (): unknown => a.agent.models.list().find((m) => m.name === 'digits')?.version;
    const fwd = await send('models.activate', { name: 'digits', version: '1.1.0' });
    t.match(fwd, { ok: true, result: { name: 'digits', version: '1.1.0', previous: '1.2.0' } }, 'an installed version, without a download');
    t.equal(version(), '1.1.0');
    const back = await send('models.rollback', { name: 'digits' });
    t.equal(back.ok, true, JSON.stringify(back));
    const now = (back.result as { version: string }).version;
    t.not(now, '1.1.0', `rolled back from 1.1.0 (to ${now}, the runtime's choice of the last good version)`);
    t.equal(version(), now, 'the reply names the version now active');
    const again = await send('models.activate', { name: 'digits', version: '1.1.0' });
    t.equal(again.ok, false, `a rolled-back version is refused: ${JSON.stringify(again.error)}`);
    t.match(again.error?.code, /^EDGE_/);
    t.equal(version(), now, 'and the active version stays');
    const missing = await send('models.activate', { name: 'digits', version: '9.9.9' });
    t.match(missing, { ok: false, error: { code: 'EDGE_FLEET_UNAVAILABLE', message: /not installed/ } });
  });

  await t.test('samples.collect copies the next inferences into the "samples" stream', async (t) => {
    const reply = sendCommand(c.ctl.client!, c.ctl.protocolVersion, 'model-dev', 'samples.collect', { model: 'digits', count: 3, timeoutMs: 20_000 }, { timeoutMs: 30_000 });
    let done = false;
    void reply.finally(() => (done = true));
    const input = { dtype: 'float32' as const, shape: [1, 1, 28, 28], data: new Float32Array(784).fill(0.25) };
    while (!done) {
      await a.agent.models.infer('digits', { input });
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await reply;
    t.match(r, { ok: true, result: { model: 'digits', requested: 3, collected: 3, stream: 'samples' } }, JSON.stringify(r).slice(0, 300));
    await a.link.flushTelemetry(20_000);
    const rows = await waitFor(() => { const x = c.store.telemetry('model-dev', { stream: 'samples' }); return x.length >= 3 && x; }, { what: 'the samples at the controller' });
    const sample = rows[0].payload as { model: string; inputs: { input: { shape: number[]; data: number[] } } };
    t.equal(sample.model, 'digits');
    t.same(sample.inputs.input.shape, [1, 1, 28, 28]);
    t.equal(sample.inputs.input.data[0], 0.25, 'the input values themselves');
    const unknown = await sendCommand(c.ctl.client!, c.ctl.protocolVersion, 'model-dev', 'samples.collect', { model: 'nope' });
    t.match(unknown, { ok: false, error: { code: 'EDGE_FLEET_UNAVAILABLE' } });
  });

  await t.test('an unsigned package is refused and the current version stays', async (t) => {
    const bad = path.join(work.dir, 'digits-2.0.0');
    cpSync(v120, bad, { recursive: true });
    const mf = JSON.parse(readFileSync(path.join(bad, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    mf.version = '2.0.0';
    writeFileSync(path.join(bad, 'manifest.json'), JSON.stringify(mf)); // the old signature no longer matches
    const art = await publishPackage(c.store, bad);
    const before = a.agent.models.list().find((m) => m.name === 'digits')?.version;
    await deploy(c.ctl.client!, c.store, { device: 'model-dev' }, art);
    const failed = await waitFor(() => (c.store.device('model-dev')?.reported as Report | null)?.models.find((m) => m.version === '2.0.0' && m.state === 'failed'),
      { timeoutMs: 30_000, what: '2.0.0 reported failed' });
    t.match(failed.reason, /signature/i, `the reason names the signature: ${failed.reason}`);
    t.equal(a.agent.models.list().find((m) => m.name === 'digits')?.version, before, `${String(before)} still serves`);
    t.notOk(existsSync(path.join(a.agent.config.dataDir, 'models/digits/2.0.0')), 'nothing installed');
  });
  await t.test('a group deployment applies where no device deployment names the model', async (t) => {
    const art = await publishPackage(c.store, v130);
    const before = a.agent.models.list().find((m) => m.name === 'digits')?.version;
    await deploy(c.ctl.client!, c.store, { group: 'lab' }, art);
    const reported = (): Report['models'] => (c.store.device('model-dev')?.reported as Report | null)?.models ?? [];
    // The device document (digits@2.0.0, refused above) still names digits: it wins.
    await waitFor(() => a.link.modelSync?.desired().groups.lab?.models.some((m) => m.version === '1.3.0'), { what: 'the group document at the device' });
    t.same(a.link.modelSync?.desired().effective.map((m) => m.version), ['2.0.0'], 'the device document wins over the group');
    await a.link.modelSync?.reconcile();
    t.equal(a.agent.models.list().find((m) => m.name === 'digits')?.version, before, 'nothing changed on the device');
    await c.ctl.client!.publishAsync('edge/v1/model-dev/models/desired', '', { qos: 1, retain: true });
    await waitFor(() => reported().some((m) => m.version === '1.3.0' && SERVING.test(m.state)), { timeoutMs: 30_000, what: () => `1.3.0 from the group (${JSON.stringify(reported())})` });
    t.equal(a.agent.models.list().find((m) => m.name === 'digits')?.version, '1.3.0', 'with the device document cleared, the group version runs');
  });
});

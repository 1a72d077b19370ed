// A model's version label is bound to its signed manifest (issue 26, item 4): a signed fp32
// build whose manifest says 1.0.0, published as digits@3.0.0, is refused by `edge-fleet
// publish`; stored under that label anyway (an older controller, a hand-edited database) and
// deployed, it is refused by the device (a real agent process, signatures required), which
// reports the deploy failed with EDGE_FLEET_VERSION_MISMATCH and never reports 3.0.0 active;
// the same bytes deployed afterwards under their true label are taken.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packArchive } from '../agent/models/archive.js';
import { generateKeyPair, signPackage } from '../agent/security/signing.js';
import { storeArtifact } from '../controller/publish.js';
import { deploy } from '../controller/requests.js';
import { root, spawnAgent } from './helpers/agent.js';
import { FP32, FP32_VERSION, copyPackage, tempDir } from './helpers/model-packages.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startController } from './fleet-support.js';

t.setTimeout(120_000);

interface Reported { name: string; version: string; state: string; reason?: string; code?: string }

t.test('a relabelled signed package is refused by edge-fleet publish and by the device', async (t) => {
  const key = generateKeyPair();
  const pkg = copyPackage(FP32);
  await signPackage(pkg, key.privateKeyPem);
  const archive = path.join(tempDir(), 'digits.edgepkg');
  await packArchive(pkg, archive);
  t.equal(FP32_VERSION, '1.0.0', 'the manifest says 1.0.0');

  const db = path.join(tempDir(), 'fleet.db');
  const cli = (args: string[]) => spawnSync(process.execPath, [path.join(root, 'dist/controller/cli.js'), ...args], { encoding: 'utf8' });
  const refused = cli(['publish', archive, '--db', db, '--version', '3.0.0']);
  t.not(refused.status, 0, 'edge-fleet publish --version 3.0.0 fails');
  t.match(refused.stderr, /--version 3\.0\.0 differs from the version in its manifest\.json \(1\.0\.0\)/, `and says why: ${refused.stderr.trim()}`);
  const honest = cli(['publish', archive, '--db', db, '--version', '1.0.0', '--json']);
  t.equal(honest.status, 0, `published under the manifest's own version (${honest.stderr.trim()})`);
  t.match(JSON.parse(honest.stdout), { name: 'digits', version: '1.0.0' });

  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const ctl = await startController(broker.url);
  t.teardown(() => ctl.stop());
  const bytes = readFileSync(archive);
  const relabelled = storeArtifact(ctl.store, bytes, { name: 'digits', version: '3.0.0' });

  const agent = spawnAgent({
    deviceId: 'label-dev',
    security: { requireSignedPackages: true, trustedKeys: [key.publicKeyPem] },
    mqtt: { url: broker.url, reconnectMinMs: 50, reconnectMaxMs: 500, keepaliveSeconds: 5 },
  });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  await waitFor(() => ctl.store.device('label-dev'), { timeoutMs: 15_000, what: 'the device online' });
  const reported = (): Reported | undefined => ((ctl.store.device('label-dev')?.reported?.models ?? []) as Reported[]).find((m) => m.name === 'digits');

  await deploy(ctl.ctl.client!, ctl.store, { device: 'label-dev' }, relabelled);
  const failed = await waitFor(() => { const r = reported(); return r && r.version === '3.0.0' && (r.state === 'failed' || r.state === 'active') ? r : undefined; },
    { timeoutMs: 30_000, what: 'the device to settle digits@3.0.0' });
  t.equal(failed.state, 'failed', 'digits@3.0.0 is not reported active');
  t.equal(failed.code, 'EDGE_FLEET_VERSION_MISMATCH', 'with a stable code');
  t.match(failed.reason, /desired digits@3\.0\.0 is a package whose signed manifest says digits@1\.0\.0/, `and a clear reason: ${failed.reason}`);
  const models = (await (await fetch(`${url}/v1/models`)).json()) as { models: { name: string }[] };
  t.notOk(models.models.some((m) => m.name === 'digits'), 'nothing serves under the false label');

  // The same bytes deployed again under their true label: the earlier refusal does not stick
  // (the deploy goes into probation, as every deploy does, and serves).
  const honestRow = storeArtifact(ctl.store, bytes, { name: 'digits', version: '1.0.0' });
  await deploy(ctl.ctl.client!, ctl.store, { device: 'label-dev' }, honestRow);
  const serving = new Set(['probation', 'active', 'committed']);
  const after = await waitFor(() => { const r = reported(); return r && r.version === '1.0.0' && (r.state === 'failed' || serving.has(r.state)) ? r : undefined; },
    { timeoutMs: 30_000, what: 'the device to settle digits@1.0.0 after the refused 3.0.0' });
  t.ok(serving.has(after.state), `digits@1.0.0 (the same bytes, rightly labelled) is taken: ${after.state} ${after.reason ?? ''}`);
  await waitFor(async () => ((await (await fetch(`${url}/v1/models`)).json()) as { models: { name: string }[] }).models.some((m) => m.name === 'digits'), { what: 'digits served' });

  t.equal(agent.proc.exitCode, null, 'the agent keeps running');
});

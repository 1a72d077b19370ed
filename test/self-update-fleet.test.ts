// An agent release delivered like a model (issue 23, docs/self-update.md): published to the
// controller (edge-fleet publish-release), deployed as the desired entry edge-agent-linux-ARCH,
// downloaded by the running agent in chunks over MQTT, verified, installed beside the running
// release; the agent exits to be restarted by the supervisor into the new release, whose health
// gate (ready and connected to the broker) commits it; the device reports "committed" on
// models/reported, which the rollout driver reads. A release for another architecture is
// reported failed with the reason, and nothing changes.
import t from 'tap';
import { mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { agentReleaseName } from '../protocol/agent-release.js';
import { deploy } from '../controller/requests.js';
import { publishRelease } from '../controller/publish-release.js';
import { spawnAgentWithFile } from './helpers/agent.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { makeRelease, releaseKeys, updateCli, updateSite } from './helpers/releases.js';
import { waitFor } from './helpers/wait.js';
import { startController } from './fleet-support.js';
import { RolloutDriver } from '../controller/rollout/driver.js';
import { RolloutStore } from '../controller/rollout/store.js';
import { ControllerFleetPort } from '../controller/rollout/fleet-port.js';
import { parseGates } from '../controller/rollout/plan.js';
import { buildFleetCli } from '../controller/cli.js';

t.setTimeout(150_000);

t.test('a release published to the controller is downloaded, installed, gated and committed', async (t) => {
  const key = releaseKeys();
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const db = path.join(mkdtempSync(path.join(tmpdir(), 'edge-upd-ctl-')), 'fleet.db');
  const c = await startController(broker.url, { db });
  t.teardown(() => c.stop());
  const site = updateSite(key, { mqtt: { url: broker.url, reconnectMinMs: 50, reconnectMaxMs: 500 } });
  const state = (): { last?: { outcome: string; version: string; reason?: string }; pending?: unknown } => {
    try {
      return JSON.parse(readFileSync(path.join(site.dataDir, 'update', 'state.json'), 'utf8'));
    } catch {
      return {};
    }
  };
  const reported = (name: string): { version?: string; state?: string; reason?: string } | undefined =>
    ((c.store.device('pi-update-1')?.reported?.models as { name: string; version?: string; state?: string; reason?: string }[] | undefined) ?? []).find((m) => m.name === name);

  const v1 = await makeRelease({ version: '1.0.0' }, key);
  t.equal((await updateCli(site, ['install', '--file', v1.file])).code, 0, 'the first release installed by hand');
  const sup = spawnAgentWithFile(site.configFile, site.dir, { args: ['supervise', '--config', site.configFile, '--restart-delay-ms', '200'] });
  t.teardown(async () => { const gone = sup.exited(); sup.kill('SIGTERM'); await gone; });
  await waitFor(() => state().last?.outcome === 'committed', { timeoutMs: 40_000, what: '1.0.0 committed (ready and connected)' });

  const v2 = await makeRelease({ version: '2.0.0' }, key);
  const art = await publishRelease(c.store, v2.file, { chunkSize: 4096 });
  t.equal(art.name, agentReleaseName(process.arch), `published as ${art.name}`);
  t.ok(art.signed, 'signed');
  // Rolled out by the rollout engine (what "edge-fleet rollout agent@2.0.0 --arch ARCH" plans and "serve" carries out).
  const driver = new RolloutDriver(new RolloutStore(c.store.db), new ControllerFleetPort(c.store, () => c.ctl.client, () => 5));
  const plan = await driver.start({ model: art.name, version: '2.0.0', group: 'all', stages: [100], gates: parseGates(['committed>=1', 'failure<=0', 'timeout=60']) });
  await waitFor(async () => { await driver.tick(); return driver.status(plan.id).rollout.state === 'completed'; }, { timeoutMs: 60_000, intervalMs: 250, what: 'the agent rollout completed' });
  t.pass('the rollout of agent@2.0.0 completed (the device reported committed)');
  await waitFor(() => state().last?.outcome === 'committed' && state().last?.version === '2.0.0', { timeoutMs: 60_000, what: '2.0.0 committed' })
    .catch((err) => { t.comment(JSON.stringify(sup.logs.filter((l) => /sync|release|update|desired/i.test(JSON.stringify(l))).slice(-15)), sup.stderr().slice(-2000), JSON.stringify(c.store.device('pi-update-1')?.reported)); throw err; });
  t.equal(path.basename(realpathSync(path.join(site.root, 'current'))), '2.0.0', 'current is 2.0.0');
  await waitFor(() => reported(art.name)?.state === 'committed' && reported(art.name)?.version === '2.0.0', { timeoutMs: 30_000, what: 'committed on models/reported' });
  t.pass('the device reports the release committed on models/reported');
  await sup.waitForLog((l) => l.msg === 'self-update: release installed and current switched; restarting', 5000, 'the install logged');
  t.pass('the running agent installed it and restarted');

  const otherArch = process.arch === 'arm64' ? 'x64' : 'arm64';
  const v3 = await makeRelease({ version: '3.0.0', arch: otherArch }, key);
  const art3 = await publishRelease(c.store, v3.file, { chunkSize: 4096 });
  await deploy(c.ctl.client!, c.store, { device: 'pi-update-1' }, art3);
  await waitFor(() => reported(art3.name)?.state === 'failed', { timeoutMs: 30_000, what: 'the other arch refused' });
  t.match(reported(art3.name)?.reason, new RegExp(`built for ${otherArch}, this machine is ${process.arch}`), String(reported(art3.name)?.reason));
  t.equal(path.basename(realpathSync(path.join(site.root, 'current'))), '2.0.0', 'nothing changed');

  // The CLI plans the same rollout for "agent@VERSION --arch ARCH".
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    await buildFleetCli().exitOverride().parseAsync(['node', 'edge-fleet', 'rollout', 'agent@3.0.0', '--arch', otherArch, '--db', db, '--stages', '100']);
  } finally {
    process.stdout.write = write;
  }
  const planned = new RolloutStore(c.store.db).list().find((r) => r.version === '3.0.0');
  t.equal(planned?.model, agentReleaseName(otherArch), 'edge-fleet rollout agent@3.0.0 --arch plans the release entry of that architecture');
});

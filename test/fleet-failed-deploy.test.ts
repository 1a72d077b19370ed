// A deploy that does not land is visible at the controller with the device's reason: an
// unsigned package sent to a device that requires signatures shows as failed, with why, in
// `edge-fleet devices` and on the fleet dashboard (its JSON and its page), not `online … none`.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { generateKeyPair, signPackage } from '../agent/security/signing.js';
import { publishPackage } from '../controller/publish.js';
import { deploy } from '../controller/requests.js';
import type { AddressInfo } from 'node:net';
import { buildDashboard } from '../controller/dashboard/server.js';
import { launchBrowser } from './helpers/browser.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { repoRoot } from './helpers/pki.js';
import { variantPackage } from './helpers/variant-models.js';
import { waitFor } from './helpers/wait.js';
import { startAgent, startController, tempDir } from './fleet-support.js';

t.setTimeout(120_000);

t.test('an unsigned package refused by the device: failed, with its reason, in edge-fleet devices', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const work = tempDir('edge-failed-deploy-');
  t.teardown(() => work.remove());
  const db = path.join(work.dir, 'fleet.db');
  const c = await startController(broker.url, { db });
  t.teardown(() => c.stop());
  const keys = generateKeyPair();
  const v100 = variantPackage('good', '1.0.0', path.join(work.dir, 'a'));
  await signPackage(v100, keys.privateKeyPem);
  const a = await startAgent(broker.url, 'strict-dev', {
    models: [{ name: 'digits', package: v100 }],
    security: { requireSignedPackages: true, trustedKeys: [keys.publicKeyPem] },
  });
  t.teardown(() => a.stop());
  const unsigned = variantPackage('good', '1.1.0', path.join(work.dir, 'b'));
  const art = await publishPackage(c.store, unsigned);
  t.equal(art.signed, false, 'publish knows it is unsigned');
  await deploy(c.ctl.client!, c.store, { device: 'strict-dev' }, art);
  await waitFor(() => ((c.store.device('strict-dev')?.reported as { models?: { version: string; state: string }[] } | null)?.models ?? []).find((m) => m.version === '1.1.0' && m.state === 'failed'),
    { timeoutMs: 30_000, what: () => `1.1.0 reported failed (${JSON.stringify(c.store.device('strict-dev')?.reported)})` });
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/edge-fleet.js'), 'devices', '--db', db], { encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /digits@1\.1\.0 failed: .*not signed/, `the reason is in the table:\n${r.stdout}`);
  t.equal(a.agent.models.list().find((m) => m.name === 'digits')?.version, '1.0.0', 'the signed version keeps serving');

  // The fleet dashboard over the same store: the failed deploy and its reason, in the row.
  const app = buildDashboard({ store: c.store, pollMs: 100 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const devices = (await (await fetch(`${url}/api/devices`)).json()) as { deviceId: string; problems: { model: string; version: string; state: string; reason: string }[] }[];
  t.match(devices.find((d) => d.deviceId === 'strict-dev')?.problems, [{ model: 'digits', version: '1.1.0', state: 'failed', reason: /not signed/ }], 'the dashboard\'s device view lists the failed deploy with its reason');
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${url}/?live=0`, { waitUntil: 'networkidle', timeout: 15_000 });
  const row = page.locator('#devices tr[data-device="strict-dev"]');
  await row.waitFor({ timeout: 15_000 });
  t.match(await row.innerText(), /digits@1\.1\.0 failed: .*not signed/, 'the row names the failed deploy and why');
  t.notMatch(await row.innerText(), /none failed/, 'the row does not say all deploys landed');
  t.match(await page.locator('#summary').innerText(), /1 with a failed deploy/, 'the summary counts it');
  t.same(errors, [], 'no script errors on the page');
});

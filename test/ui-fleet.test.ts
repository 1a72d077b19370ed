// The fleet dashboard end to end in headless Chromium: a controller and two real agent
// processes on a real Mosquitto. Both show online; one is killed and shows offline (Last
// Will); inverted digits raise drift that appears on the chart; a rollout shows its stage and
// its field-accuracy gate.
import t from 'tap';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { buildDashboard } from '../controller/dashboard/server.js';
import { publishPackage } from '../controller/publish.js';
import { planRollout } from '../controller/rollout/driver.js';
import { DEFAULT_GATES } from '../controller/rollout/plan.js';
import { RolloutLoop } from '../controller/rollout/loop.js';
import { spawnAgent } from './helpers/agent.js';
import { artifactsDir, launchBrowser } from './helpers/browser.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { digitBatch, FP32, tempDir } from './helpers/model-packages.js';
import { variantPackage } from './helpers/variant-models.js';
import { waitFor } from './helpers/wait.js';
import { startController } from './fleet-support.js';

t.test('the dashboard follows a live fleet', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const ctl = await startController(broker.url);
  t.teardown(() => ctl.stop());
  const loop = new RolloutLoop(ctl.ctl, () => undefined, 200);
  loop.start();
  t.teardown(() => loop.stop());
  const app = buildDashboard({ store: ctl.store, rollouts: () => loop.statuses(), pollMs: 200 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  const agentConfig = (deviceId: string) => ({
    deviceId,
    models: [{ name: 'digits', package: FP32, backend: 'ort' }],
    security: { requireSignedPackages: false },
    mqtt: { url: broker.url, groups: ['lab'], reconnectMinMs: 50, reconnectMaxMs: 500, keepaliveSeconds: 5 },
    drift: { windowInferences: 200, sampleEvery: 1 },
    rollout: { probation: { minInferences: 0, minSeconds: 1 } },
  });
  const a = spawnAgent(agentConfig('pi-dash-a'));
  const b = spawnAgent(agentConfig('pi-dash-b'));
  t.teardown(() => { a.kill('SIGKILL'); b.kill('SIGKILL'); });
  const urlA = await a.ready();
  await b.ready();

  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  const row = (id: string) => page.locator(`#devices tr[data-device="${id}"]`);
  await row('pi-dash-a').getByText('online').waitFor({ timeout: 30_000 });
  await row('pi-dash-b').getByText('online').waitFor({ timeout: 30_000 });
  t.pass('both devices online');

  b.kill('SIGKILL');
  await row('pi-dash-b').getByText('offline').waitFor({ timeout: 30_000 });
  t.pass('the killed device goes offline (its Last Will)');

  // Inverted digits through the local inference API: a drift window closes after 200.
  for (let i = 0; i < 20; i++) {
    const batch = digitBatch(i * 10, 10);
    const res = await fetch(`${urlA}/v1/models/digits/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: { input: { shape: batch.shape, data: Array.from(batch.data, (v) => 1 - v) } } }),
    });
    t.equal(res.status, 200);
  }
  await page.locator('#drift [data-key="digits@1.0.0"] canvas').waitFor({ timeout: 60_000 });
  t.match(await page.locator('#drift').innerText(), /digits@1\.0\.0\s+.*(alert|warn)/s, 'the fleet drift section names the model version and its verdict');

  await publishPackage(ctl.store, variantPackage('good', '1.1.0', tempDir()), {});
  // With the field-accuracy gate: no labels come, so the first stage waits and the page says why.
  planRollout(loop.store, { model: 'digits', version: '1.1.0', group: 'lab', stages: [50, 100], gates: { ...DEFAULT_GATES, minFieldGain: 0, minFieldLabels: 50 } });
  loop.kick();
  await page.locator('#rollouts').getByText(/digits@1\.1\.0 to lab/).waitFor({ timeout: 30_000 });
  await page.locator('#rollouts').getByText(/stage 1 \(50%\)/).waitFor({ timeout: 30_000 });
  t.pass('the rollout and its first stage are on the page');
  await page.locator('#rollouts').getByText(/field accuracy: 1\.1\.0 n\/a vs .*gain n\/a \(needs >= 0\), 0 labelled requests \(50 needed\)/).waitFor({ timeout: 30_000 });
  t.pass('the field gate\'s accuracies, gain and labels are on the page');
  await page.screenshot({ path: path.join(artifactsDir, 'fleet-dashboard.png'), fullPage: true });
  t.same(errors, [], 'no script errors on the page');
});

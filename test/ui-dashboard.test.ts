// The fleet dashboard in headless Chromium over a real controller database; live updates
// arrive over server-sent events without a reload.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { FleetStore } from '../controller/store.js';
import { buildDashboard } from '../controller/dashboard/server.js';
import { artifactsDir, launchBrowser } from './helpers/browser.js';

t.test('devices, their state and fleet drift update live on the dashboard', async (t) => {
  const store = new FleetStore(path.join(mkdtempSync(path.join(tmpdir(), 'edge-dash-')), 'fleet.db'));
  t.teardown(() => store.close());
  store.upsertStatus('pi-a', { state: 'online', agentVersion: '0.1.0', models: [{ name: 'digits', version: '1.0.0' }], groups: ['lab'] });
  store.upsertStatus('pi-b', { state: 'online', agentVersion: '0.1.0', models: [{ name: 'digits', version: '1.0.0' }], groups: ['lab'] });
  const app = buildDashboard({ store, pollMs: 100 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  const api = (await (await fetch(`${url}/api/devices`)).json()) as { deviceId: string; online: boolean }[];
  t.same(api.map((d) => [d.deviceId, d.online]), [['pi-a', true], ['pi-b', true]], 'the JSON view lists both devices online');
  t.equal((await fetch(`${url}/api/devices/nope`)).status, 404);

  // Field examples and labels arrived before the page opens: its first render shows them.
  store.ingestBatch('pi-a', 'examples', [1, 2, 3].map((i) => ({ seq: i, ts: Date.now(), payload: { id: `e${i}`, model: 'digits', version: '1.0.0', inputs: {} } })));
  store.ingestBatch('pi-a', 'feedback', [1, 2].map((i) => ({ seq: i, ts: Date.now(), payload: { id: `e${i}`, model: 'digits', version: '1.0.0', label: 7 } })));

  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  const row = (id: string) => page.locator(`#devices tr[data-device="${id}"]`);
  await row('pi-b').getByText('online').waitFor({ timeout: 15_000 });
  t.pass('both devices show as online');
  const learning = page.locator('#learning-table tr[data-model="digits@1.0.0"]');
  await learning.waitFor({ timeout: 15_000 });
  t.equal((await learning.innerText()).replace(/\s+/g, ' ').trim(), 'digits 1.0.0 3 2 7: 2', 'the learning table: examples, labels, labels per class');

  store.upsertStatus('pi-b', { state: 'offline', agentVersion: '0.1.0', models: [], groups: ['lab'] });
  await row('pi-b').getByText('offline').waitFor({ timeout: 15_000 });
  t.match(await page.locator('#summary').innerText(), /1 online.*1 offline/s, 'the summary counts the offline device, in words');

  store.ingestBatch('pi-a', 'drift', [{ seq: 1, ts: Date.now(), payload: {
    model: 'digits', version: '1.0.0', verdict: 'alert', window: { end: new Date().toISOString(), size: 500 },
    features: [{ name: 'pixel_mean', verdict: 'drift', score: 3.2 }, { name: 'pixel_std', verdict: 'ok', score: 0.2 }],
  } }]);
  await page.locator('#drift [data-key="digits@1.0.0"] canvas').waitFor({ timeout: 15_000 });
  await row('pi-a').getByText('alert').waitFor({ timeout: 15_000 });
  t.pass('the drift report appears on the chart and on the device row');

  await row('pi-a').click();
  await page.getByRole('heading', { name: 'Device pi-a' }).waitFor();
  t.match(await page.locator('#device').innerText(), /digits@1\.0\.0/, 'the device page shows its models');
  await page.screenshot({ path: path.join(artifactsDir, 'dashboard.png'), fullPage: true });

  // ?live=0: one snapshot, no event stream, so the network goes idle (headless screenshots).
  const still = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  still.on('pageerror', (e) => errors.push(e.message));
  await still.goto(`${url}/?live=0`, { waitUntil: 'networkidle', timeout: 15_000 });
  await still.locator('#devices tr[data-device="pi-a"]').getByText('alert').waitFor({ timeout: 15_000 });
  t.pass('?live=0 renders from one snapshot and settles');
  t.same(errors, [], 'no script errors on the page');
});

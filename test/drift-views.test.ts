/// <reference lib="dom" />
// One drift verdict on every screen: a real agent closes two windows of shifted data (one of 22
// observations, below minWindowSize 100, and one of 400); its reports go into a real controller
// database. The device page (GET /v1/drift and the page in Chromium), the fleet dashboard (its
// JSON and its page) and `edge-fleet drift` (a child process) must say the same: "insufficient"
// with its reason and no scores for the small window, "alert" for the large one.
import t from 'tap';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { buildReference, type DriftReport, type ShownVerdict } from '../agent/drift/index.js';
import { FleetStore } from '../controller/store.js';
import { publishPackage } from '../controller/publish.js';
import { buildDashboard } from '../controller/dashboard/server.js';
import { launchBrowser } from './helpers/browser.js';
import { rng, tabularBatch, TABULAR_SPEC } from './drift-fixtures.js';

t.setTimeout(180_000);
const run = promisify(execFile);
const reference = buildReference(Array.from({ length: 20 }, (_, i) => ({ inputs: tabularBatch(rng(700 + i), 250) })), TABULAR_SPEC);
const SHIFT = { meanA: 6, scaleB: 5, newColor: 0.9 };
const REASON = 'window of 22 < minWindowSize 100: no verdict';

t.test('the device page, the fleet dashboard and edge-fleet drift show one verdict', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-drift-views-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig({
    deviceId: 'pi-v', dataDir: 'data', health: { port: 0 }, log: { level: 'silent' }, security: { requireSignedPackages: false },
    drift: { windowInferences: 400, minWindowSize: 100, sampleEvery: 1 },
  }, 'test', dir);
  const agent = new Agent(config);
  await agent.start();
  t.teardown(() => agent.stop());

  // "small": 22 strongly shifted rows, closed on request (scores far above any level, yet no verdict).
  agent.drift.attach('small', '1.0.0', reference);
  agent.drift.observe('small', '1.0.0', tabularBatch(rng(1), 22, SHIFT), {});
  agent.drift.closeWindow('small');
  // "big": a full window of 400 shifted rows.
  agent.drift.attach('big', '1.0.0', reference);
  agent.drift.observe('big', '1.0.0', tabularBatch(rng(2), 400, SHIFT), {});
  await agent.telemetry.flush();
  const reports: DriftReport[] = [];
  for (let lease = agent.telemetry.lease(4 << 20, { stream: 'drift' }); lease; lease = agent.telemetry.lease(4 << 20, { stream: 'drift' })) {
    reports.push(...lease.records.map((r) => r.payload as DriftReport));
    agent.telemetry.ack(lease.id);
  }
  t.same(reports.map((r) => [r.model, r.verdict]).sort(), [['big', 'alert'], ['small', 'insufficient']], 'the fixture: one window too small, one alert');
  t.equal(reports.find((r) => r.model === 'small')!.reason, REASON, 'the small window\'s report says why it has no verdict');

  // 1. The device: GET /v1/drift carries the verdict as shown.
  const device = (await (await fetch(`${agent.url}/v1/drift`)).json()) as { models: Record<string, { shown: ShownVerdict }> };
  t.same(device.models.small.shown, { verdict: 'insufficient', level: 'muted', reason: REASON, scores: false }, 'device: insufficient, with its reason, no scores');
  t.same(device.models.big.shown, { verdict: 'alert', level: 'bad', scores: true }, 'device: alert');

  // 2. The controller: the same reports as they arrive on stream "drift".
  const db = path.join(dir, 'fleet.db');
  const store = new FleetStore(db);
  store.upsertStatus('pi-v', { state: 'online', agentVersion: '0.1.0', models: [{ name: 'small', version: '1.0.0' }, { name: 'big', version: '1.0.0' }], groups: [] });
  store.ingestBatch('pi-v', 'drift', reports.map((payload, i) => ({ seq: i + 1, ts: Date.parse(payload.window.end), payload })));
  // The packages, so that `edge-fleet drift` also merges the fleet's windows against the reference.
  for (const model of ['small', 'big']) {
    const pkg = path.join(dir, `pkg-${model}`);
    cpSync('models/digits-fp32', pkg, { recursive: true });
    const manifest = JSON.parse(readFileSync(path.join(pkg, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(path.join(pkg, 'manifest.json'), JSON.stringify({ ...manifest, name: model, version: '1.0.0', drift: reference }));
    await publishPackage(store, pkg);
  }
  const app = buildDashboard({ store, pollMs: 100 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const dash = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const fleet = (await (await fetch(`${dash}/api/drift`)).json()) as { model: string; verdict: ShownVerdict; features: { maxScore: number }[]; devices: { verdict: ShownVerdict }[] }[];
  const dashboard = Object.fromEntries(fleet.map((v) => [v.model, v]));
  for (const m of ['small', 'big']) {
    t.same(dashboard[m].verdict, device.models[m].shown, `dashboard /api/drift: ${m} as on the device`);
    t.same(dashboard[m].devices[0].verdict, device.models[m].shown, `dashboard, per device: ${m} as on the device`);
  }
  t.same(dashboard.small.features, [], 'no scores on the dashboard for the window too small to judge');
  t.ok(dashboard.big.features[0].maxScore > 1, 'the alert window keeps its scores');
  const one = (await (await fetch(`${dash}/api/devices/pi-v`)).json()) as { drift: { model: string; verdict: ShownVerdict }[] };
  t.same(Object.fromEntries(one.drift.map((d) => [d.model, d.verdict])), { small: device.models.small.shown, big: device.models.big.shown }, 'dashboard device view: the same verdicts');
  const row = ((await (await fetch(`${dash}/api/devices`)).json()) as { drift: ShownVerdict }[])[0];
  t.equal(row.drift.verdict, 'alert', 'the device row: the worst judged window (the small one is not judged)');

  // 3. `edge-fleet drift`, a real child process on the same database.
  const json = await run(process.execPath, ['--import', 'tsx', 'controller/cli.ts', 'drift', '--db', db, '--json'], { timeout: 60_000 });
  const cli = Object.fromEntries((JSON.parse(json.stdout) as { model: string; verdict: string; fleet: string; fleetDrifted: string; worstDevices: string; worstFeatures: string }[]).map((r) => [r.model, r]));
  t.equal(cli.small.verdict, `insufficient: ${REASON}`, 'edge-fleet drift: insufficient with the same reason');
  t.equal(cli.small.worstDevices, 'pi-v insufficient', 'no score beside a device without a verdict');
  t.equal(cli.small.worstFeatures, '-', 'no feature scores for a window without a verdict');
  t.match(cli.small, { fleet: /^insufficient \(22 rows\): fleet window of 22 < minWindowSize 100: no verdict$/, fleetDrifted: '-' }, 'the merged fleet window is held to the same minimum: no alert from 22 rows');
  t.equal(cli.big.verdict, 'alert', 'edge-fleet drift: alert, as on the device and the dashboard');
  t.match(cli.big, { fleet: /^alert \(400 rows/ }, 'the merged fleet window of one device: the same verdict');
  const text = await run(process.execPath, ['--import', 'tsx', 'controller/cli.ts', 'drift', '--db', db], { timeout: 60_000 });
  t.match(text.stdout, /small\s+1\.0\.0\s+1\s+insufficient: window of 22 < minWindowSize 100/, 'the table prints the verdict and its reason');

  // The pages print what they were given.
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const errors: string[] = [];
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${agent.url}/`);
  await page.locator('#drift h3', { hasText: 'big' }).waitFor({ timeout: 15_000 });
  const drift = await page.locator('#drift').innerText();
  t.match(drift, /small 1\.0\.0\s+insufficient/, 'device page: insufficient, as such');
  t.match(drift, new RegExp(REASON.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'device page: with its reason');
  t.match(drift, /big 1\.0\.0\s+alert/, 'device page: alert');
  t.notMatch(drift.slice(0, drift.indexOf('big 1.0.0')), /psi|score/, 'device page: no scores under the window too small to judge');

  const still = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  still.on('pageerror', (e) => errors.push(e.message));
  await still.goto(`${dash}/?live=0`, { waitUntil: 'networkidle', timeout: 15_000 });
  await still.locator('#drift [data-key="small@1.0.0"] h3').waitFor({ timeout: 15_000 });
  t.match(await still.locator('#drift [data-key="small@1.0.0"]').innerText(), new RegExp(`small@1\\.0\\.0\\s+insufficient[\\s\\S]*pi-v: insufficient \\(${REASON.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`), 'dashboard page: insufficient with its reason');
  t.match(await still.locator('#drift [data-key="big@1.0.0"]').innerText(), /big@1\.0\.0\s+alert/, 'dashboard page: alert');
  await still.locator('#devices tr[data-device="pi-v"]').getByText('alert').waitFor({ timeout: 15_000 });
  t.same(errors, [], 'no script errors on either page');
  store.close();
});

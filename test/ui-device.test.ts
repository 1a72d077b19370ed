/// <reference lib="dom" />
// The device status page in a real headless Chromium against a real agent serving the digits
// model: models with latency, and the drift chart after inverted digits.
import t from 'tap';
import path from 'node:path';
import { spawnAgent } from './helpers/agent.js';
import { artifactsDir, launchBrowser } from './helpers/browser.js';
import { digitBatch, FP32 } from './helpers/model-packages.js';

t.test('the status page shows the device, its models, latency and drift, on a phone screen too', async (t) => {
  const agent = spawnAgent({
    deviceId: 'pi-ui-1',
    models: [{ name: 'digits', package: FP32, backend: 'ort' }],
    security: { requireSignedPackages: false },
    drift: { windowInferences: 200, sampleEvery: 1 },
  });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const errors: string[] = [];

  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${url}/`);
  await page.getByRole('heading', { name: 'pi-ui-1' }).waitFor({ timeout: 15_000 });
  await page.getByText('ready', { exact: true }).waitFor({ timeout: 15_000 });
  t.match(await page.locator('#agent').innerText(), /CPU features/, 'agent facts are shown');
  await page.locator('#models tbody tr', { hasText: 'digits' }).waitFor({ timeout: 15_000 });
  t.match(await page.locator('#models').innerText(), /digits\s+1\.0\.0\s+ort/, 'the model row names version and backend');

  for (let i = 0; i < 20; i++) {
    const b = digitBatch(i * 10, 10);
    const res = await fetch(`${url}/v1/models/digits/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: { input: { shape: b.shape, data: Array.from(b.data, (v) => 1 - v) } } }),
    });
    t.equal(res.status, 200);
  }
  await page.locator('#drift .feature canvas').first().waitFor({ timeout: 30_000 });
  t.match(await page.locator('#drift').innerText(), /digits 1\.0\.0\s+(alert|warn)/, 'the drift report of the inverted digits is shown with its verdict in words');
  t.match(await page.locator('#drift').innerText(), /psi [\d.]+ \(warns at [\d.]+\)/, 'each statistic beside the level it warns at');
  await page.waitForFunction(() => /\d/.test(document.querySelector('#models tbody tr td:nth-child(5)')?.textContent ?? ''), undefined, { timeout: 15_000 });
  t.pass('p50 latency is shown for the model');
  const telemetry = await page.locator('#telemetry').innerText();
  t.match(telemetry, /waiting to send\s+\d+ records, [\d.]+ KB of [\d.]+ KB/, 'the buffer in words');
  t.match(telemetry, /fleet broker\s+none configured: running offline/, 'the broker link in words');
  const page_ = await page.locator('main').innerText();
  t.notMatch(page_, /\[object Object\]/, 'no [object Object] anywhere');
  t.notMatch(telemetry, /\b(telemetry|fleet)\.[a-z]+/i, 'no raw dotted keys');
  t.match(await page.locator('#rollouts').innerText(), /digits: serving 1\.0\.0|no rollout yet/, 'the rollout history section');
  await page.screenshot({ path: path.join(artifactsDir, 'device-desktop.png'), fullPage: true });

  const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
  phone.on('pageerror', (e) => errors.push(e.message));
  await phone.goto(`${url}/`);
  await phone.getByRole('heading', { name: 'pi-ui-1' }).waitFor({ timeout: 15_000 });
  await phone.locator('#drift .feature canvas').first().waitFor({ timeout: 15_000 });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  t.ok(overflow <= 1, `phone: no horizontal scrolling of the page (overflow ${overflow}px)`);
  await phone.screenshot({ path: path.join(artifactsDir, 'device-phone.png'), fullPage: true });
  t.same(errors, [], 'no script errors on the page');
});

// The device status page in a real headless Chromium against a real agent.
import t from 'tap';
import path from 'node:path';
import { spawnAgent } from './helpers/agent.js';
import { artifactsDir, launchBrowser } from './helpers/browser.js';

t.test('the status page shows the device, its state and its models, on a phone screen too', async (t) => {
  const agent = spawnAgent({ deviceId: 'pi-ui-1' });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const errors: string[] = [];
  for (const viewport of [{ width: 1280, height: 900, name: 'desktop' }, { width: 390, height: 844, name: 'phone' }]) {
    const page = await browser.newPage({ viewport });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/`);
    await page.getByRole('heading', { name: 'pi-ui-1' }).waitFor({ timeout: 15_000 });
    await page.getByText('ready', { exact: true }).waitFor({ timeout: 15_000 });
    t.match(await page.locator('#agent').innerText(), /CPU features/, `${viewport.name}: agent facts are shown`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    t.ok(overflow <= 1, `${viewport.name}: no horizontal scrolling of the page (overflow ${overflow}px)`);
    await page.screenshot({ path: path.join(artifactsDir, `device-${viewport.name}.png`), fullPage: true });
    await page.close();
  }
  t.same(errors, [], 'no script errors on the page');
});

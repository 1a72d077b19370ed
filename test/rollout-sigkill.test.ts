// SIGKILL at the steps of a model update (downloading, verifying, installed, probation,
// committed): after the restart the agent serves a complete, verified version and what it
// reports is consistent with what it serves. Real agent processes, a real Mosquitto.
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { publishPackage } from '../controller/publish.js';
import { deploy } from '../controller/requests.js';
import { spawnAgentWithFile, writeConfig } from './helpers/agent.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { FP32, tempDir } from './helpers/model-packages.js';
import { variantPackage } from './helpers/variant-models.js';
import { waitFor } from './helpers/wait.js';
import { startController } from './fleet-support.js';

const ALL_STEPS = ['downloading', 'verifying', 'installed', 'probation', 'committed'] as const;
// EDGE_TEST_STEPS=verifying (comma-separated) runs some of them, for looping on one step.
// A kill during verifying leaves the complete download behind: the restart resumes it with every
// chunk kept (it once padded the file with zeros, failed its sha256 and stayed "failed").
const STEPS = process.env.EDGE_TEST_STEPS ? ALL_STEPS.filter((s) => process.env.EDGE_TEST_STEPS!.split(',').includes(s)) : ALL_STEPS;

t.test('SIGKILL at each step of an update leaves a serving, consistent device', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const ctl = await startController(broker.url);
  t.teardown(() => ctl.stop());
  // Small chunks, one request at a time, so the download lasts long enough to be interrupted.
  const art = await publishPackage(ctl.store, variantPackage(process.env.EDGE_TEST_BIG ? 'slow' : 'good', '1.1.0', tempDir()), { chunkSize: process.env.EDGE_TEST_BIG ? 64 * 1024 : 2 * 1024 });

  for (const step of STEPS) {
    await t.test(`killed at "${step}"`, async (t) => {
      const deviceId = `pi-kill-${step}`;
      const { dir, file } = writeConfig({
        deviceId,
        models: [{ name: 'digits', package: FP32, backend: 'ort' }],
        security: { requireSignedPackages: false },
        mqtt: { url: broker.url, reconnectMinMs: 50, reconnectMaxMs: 500, downloadWindow: 1 },
        rollout: { probation: { minInferences: 0, minSeconds: 2, maxRestarts: 1 } },
        log: { level: process.env.EDGE_TEST_LOG ?? 'info' },
      });
      const reportedState = (): string | undefined => {
        const models = (ctl.store.device(deviceId)?.reported?.models as { name: string; version: string; state: string }[] | undefined) ?? [];
        return models.find((m) => m.name === 'digits' && m.version === '1.1.0')?.state;
      };
      const seen: string[] = [];
      const onReported = (device: string): void => {
        const s = reportedState();
        if (device === deviceId && s && seen.at(-1) !== s) seen.push(s);
      };
      ctl.ctl.on('reported', onReported);
      t.teardown(() => ctl.ctl.off('reported', onReported));

      const first = spawnAgentWithFile(file, dir);
      t.teardown(() => first.kill('SIGKILL'));
      await first.ready();
      await waitFor(() => ctl.store.device(deviceId)?.state === 'online', { what: `${deviceId} online` });
      await deploy(ctl.ctl.client!, ctl.store, { device: deviceId }, art);
      // Kill at the step, or at the first step after it if the device went past it in between reports.
      const order = ['downloading', 'verifying', 'installed', 'active', 'probation', 'committed'];
      await waitFor(() => seen.some((s) => order.indexOf(s) >= order.indexOf(step)), { timeoutMs: 60_000, what: () => `${deviceId} reports ${step} (seen ${seen.join(',')})` });
      first.kill('SIGKILL');
      await first.exited();
      t.comment(`killed after reports: ${seen.join(' -> ')}`);

      const second = spawnAgentWithFile(file, dir);
      t.teardown(() => second.kill('SIGKILL'));
      const url = await second.ready();
      // The desired state is retained on the broker: the device finishes the update.
      await waitFor(() => reportedState() === 'committed', { timeoutMs: 60_000, what: `${deviceId} committed 1.1.0` }).catch(async (err) => {
        // What the agent and the broker said until now, not when the wait began.
        const fleet = await fetch(`${url}/v1/status`).then(async (r) => ((await r.json()) as { fleet?: unknown }).fleet, (e) => String(e));
        throw new Error(`${(err as Error).message} (seen ${seen.join(',')}); fleet status: ${JSON.stringify(fleet)}; agent log: ${second.logs.map((l) => JSON.stringify(l)).join('\n')}; broker: ${broker.output().slice(-3000)}`);
      });
      const res = await fetch(`${url}/v1/status`).catch((err) => {
        throw new Error(`status failed (${err}); agent exit ${second.proc.exitCode} ${second.proc.signalCode}; stderr: ${second.stderr()}; last logs: ${second.logs.slice(-5).map((l) => JSON.stringify(l)).join(' ')}`);
      });
      const status = (await res.json()) as any;
      const serving = status.models.models.find((m: { name: string }) => m.name === 'digits');
      t.equal(serving.version, '1.1.0', 'the device serves the new version');
      t.equal(status.rollouts.digits.active, '1.1.0', 'and its slot says the same');
      t.equal((await fetch(`${url}/readyz`)).status, 200, 'ready');
      const installed = path.join(dir, 'data/models/digits');
      const leftovers = existsSync(installed) ? readdirSync(installed).filter((n) => n.startsWith('.')) : [];
      t.ok(leftovers.every((n) => n.endsWith('.partial') || n === '.1.1.0.installed.json'), `only install marks and resumable partial downloads (${leftovers.join(', ') || 'none'})`);
      second.kill('SIGTERM');
      await second.exited();
    });
  }
});

// Provisioning with real processes: the compiled `edge-fleet serve --provisioning` and the
// compiled agent daemon, against the production Mosquitto config with the CRL. The agent is
// killed (SIGKILL, as a power cut would stop it) while its first enrollment waits for an
// answer, then again once enrolled: it never ends up with a half identity, and enrolls once.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { makePki, repoRoot } from './helpers/pki.js';
import { spawnAgentWithFile, writeConfig } from './helpers/agent.js';
import { killOnExit } from './helpers/cleanup.js';
import { waitFor } from './helpers/wait.js';
import { startProvisioningBroker } from './helpers/provisioning-broker.js';
import { addClaim } from '../controller/provisioning/admin.js';

t.setTimeout(180_000);

t.test('a real agent enrolls through a real controller, survives SIGKILL mid-enrollment, and keeps its identity across restarts', async (t) => {
  const pki = makePki([]);
  t.teardown(() => pki.remove());
  const { url, work, provDir } = await startProvisioningBroker(pki, 'edge-prov-proc-', (f) => t.teardown(f));
  const image = path.join(work.dir, 'image');
  await addClaim(provDir, 'claim-batch', { pattern: 'pi-[0-9]+', lifetimeSeconds: 3600, perHour: 20, claimLifetimeSeconds: 86_400, out: image });

  const { dir, file } = writeConfig({
    deviceId: 'pi-7',
    log: { level: 'info' },
    mqtt: { url, ca: path.join(image, 'ca.crt'), reconnectMinMs: 50, reconnectMaxMs: 500 },
    provisioning: { claimCert: path.join(image, 'claim-batch.crt'), claimKey: path.join(image, 'claim-batch.key'), requestTimeoutMs: 60_000, retryMs: 300 },
    security: { requireSignedPackages: false },
  });
  const identityDir = path.join(dir, 'data', 'identity');

  // 1. No controller yet: the request waits for an answer; the agent is killed meanwhile.
  const first = spawnAgentWithFile(file, dir);
  await first.ready();
  await waitFor(() => readdirSync(identityDir).some((e) => e.startsWith('gen-')), { timeoutMs: 20_000, what: 'the device key written while the enrollment waits' });
  first.kill('SIGKILL');
  await first.exited();
  t.notOk(readdirSync(identityDir).includes('current'), 'killed mid-enrollment: no current identity');

  // 2. The controller starts; the agent starts again, drops the unfinished key and enrolls.
  const serve = spawn(process.execPath, [path.join(repoRoot, 'dist', 'controller', 'cli.js'), 'serve', '--broker', url,
    '--ca', pki.file('ca.crt'), '--cert', pki.file('controller.crt'), '--key', pki.file('controller.key'),
    '--db', path.join(work.dir, 'fleet.db'), '--provisioning', provDir, '--share', 'none', '--no-rollouts', '--id', 'ctl-prov-test'], { stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(() => serve.kill('SIGKILL'));
  let serveOut = '';
  serve.stdout!.on('data', (d) => (serveOut += d));
  serve.stderr!.on('data', (d) => (serveOut += d));
  t.teardown(() => { serve.kill('SIGTERM'); });
  await waitFor(() => serveOut.includes('"ready":true') || (serve.exitCode !== null && Promise.reject(new Error(serveOut))), { timeoutMs: 30_000, what: () => `edge-fleet serve ready (${serveOut})` });

  const second = spawnAgentWithFile(file, dir);
  t.teardown(() => second.kill('SIGKILL'));
  await second.waitForLog((l) => l.msg === 'enrolled: the device has its own certificate', 60_000, 'enrolled');
  await second.waitForLog((l) => l.msg === 'connected to the fleet broker', 30_000, 'connected with its own certificate');
  t.equal(readdirSync(identityDir).filter((e) => e.startsWith('gen-')).length, 1, 'one generation: the unfinished one was removed');
  t.match(serveOut, /enrolled.*"deviceId":"pi-7"/, 'the controller logged the enrollment');
  second.kill('SIGKILL');
  await second.exited();

  // 3. Enrolled: after another kill the agent connects with the stored identity, without enrolling.
  const third = spawnAgentWithFile(file, dir);
  t.teardown(() => third.kill('SIGKILL'));
  await third.waitForLog((l) => l.msg === 'connected to the fleet broker', 30_000, 'connected with the stored certificate');
  t.notOk(third.logs.some((l) => l.msg === 'enrolled: the device has its own certificate'), 'no second enrollment');
  third.kill('SIGTERM');
  await third.exited();
});

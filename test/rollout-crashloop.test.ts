// A version whose package is fine but whose process dies while loading it: real agent
// processes, killed for real, restarted by a supervisor loop as systemd would. The boot
// counter in SQLite sees the crash loop and the agent comes back on the committed version.
import t from 'tap';
import path from 'node:path';
import { RolloutStore } from '../agent/rollout/rollout-store.js';
import { spawnAgent, writeConfig } from './helpers/agent.js';
import { spawnAgentWithFile } from './helpers/agent.js';
import { FP32, tempDir } from './helpers/model-packages.js';
import { variantPackage } from './helpers/variant-models.js';

t.test('a candidate that crashes the agent on load is rolled back after the restart budget', async (t) => {
  const { dir, file } = writeConfig({
    models: [{ name: 'digits', package: FP32, backend: 'ort' }],
    security: { requireSignedPackages: false },
    rollout: { probation: { maxRestarts: 1 } },
  });
  const dataDir = path.join(dir, 'data');

  // A clean first run, then the state a device is left in when it died activating 4.0.0: the
  // candidate was recorded on probation before its load started (the first crash).
  const first = spawnAgentWithFile(file, dir);
  await first.ready();
  first.kill('SIGTERM');
  t.equal((await first.exited()).code, 0);
  const crashing = variantPackage('good', '4.0.0', tempDir());
  const store = new RolloutStore(dataDir);
  store.put({ model: 'digits', active: { version: '1.0.0', dir: FP32 }, candidate: { version: '4.0.0', dir: crashing, phase: 'probation', boots: 0, since: Date.now() } });
  store.close();

  const env = { EDGE_FAULT_CRASH_ON_LOAD: 'digits@4.0.0' };
  const deaths: (string | null)[] = [];
  let url = '';
  for (let start = 0; start < 5 && !url; start++) {
    const agent = spawnAgentWithFile(file, dir, { env });
    t.teardown(() => agent.kill('SIGKILL'));
    const outcome = await Promise.race([agent.ready().then((u) => ({ url: u })), agent.exited().then((e) => ({ exit: e }))]);
    if ('url' in outcome) {
      url = outcome.url;
      const body = (await (await fetch(`${url}/v1/status`)).json()) as any;
      t.equal(body.rollouts.digits.active, '1.0.0', 'the committed version is active again');
      t.equal(body.rollouts.digits.candidate, undefined, 'no candidate any more');
      t.match(body.rollouts.digits.events.at(-1), { step: 'rolled_back', version: '4.0.0', reason: /crash loop: the agent restarted 2 times during probation/ });
      const res = await fetch(`${url}/v1/models/digits/infer`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: { input: { shape: [1, 1, 28, 28], data: new Array(784).fill(0) } } }),
      });
      t.equal(((await res.json()) as any).version, '1.0.0', 'and it serves');
      agent.kill('SIGTERM');
      await agent.exited();
    } else {
      deaths.push(outcome.exit.signal);
    }
  }
  t.same(deaths, ['SIGKILL'], 'the restart after the first crash tries 4.0.0 again and dies; the next start sees a crash loop');
  t.ok(url, 'the third start comes up serving');
});

t.test('the fault injection point is inert without its variable', async (t) => {
  const agent = spawnAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], security: { requireSignedPackages: false } });
  t.teardown(() => agent.kill('SIGKILL'));
  t.ok(await agent.ready());
});

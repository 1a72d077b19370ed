// Hot swap under load: clients keep sending requests over HTTP while versions are swapped in,
// rolled back and a bad one is offered; not one request fails, /readyz stays ready, and once a
// swap has returned every new request is answered by the new version.
import t from 'tap';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { waitFor } from './helpers/wait.js';
import { copyPackage, digitBatch, FP32, INT8, postJson, readManifest, startAgent, tempDir, writeManifest, FP32_VERSION, INT8_VERSION } from './helpers/model-packages.js';

const work = tempDir();
t.teardown(() => rmSync(work, { recursive: true, force: true }));

interface Outcome { status: number; version?: string; startedAt: number; endedAt: number }

t.test('swaps, a rollback and a bad package under load: zero failed requests', async (t) => {
  // A third version: the fp32 model under a new version number.
  const v110 = copyPackage(FP32, work);
  writeManifest(v110, { ...readManifest(v110), version: '1.1.0' });
  const bad = copyPackage(FP32, work);
  writeManifest(bad, { ...readManifest(bad), inputs: [{ name: 'input', dtype: 'float32', shape: ['N', 1, 14, 14] }] });

  const running = await startAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], runtime: { queueLimit: 10_000, threads: 1 } });
  t.teardown(() => running.stop());
  const url = `${running.url}/v1/models/digits/infer`;
  const outcomes: Outcome[] = [];
  const readiness: number[] = [];
  let stop = false;
  const batch = digitBatch(0, 4);
  const body = { inputs: { input: { shape: batch.shape, data: Array.from(batch.data) } } };
  const client = async (): Promise<void> => {
    while (!stop) {
      const startedAt = performance.now();
      try {
        const res = await postJson(url, body);
        outcomes.push({ status: res.status, version: res.body?.version, startedAt, endedAt: performance.now() });
      } catch (err) {
        outcomes.push({ status: -1, startedAt, endedAt: performance.now() });
      }
    }
  };
  const readyPoller = async (): Promise<void> => {
    while (!stop) readiness.push((await fetch(`${running.url}/readyz`)).status);
  };
  const load = [client(), client(), client(), readyPoller()];
  const seen = (version: string, after = 0) => outcomes.filter((o) => o.version === version && o.startedAt >= after).length;

  await waitFor(() => seen(FP32_VERSION) >= 20, { timeoutMs: 30_000, what: `requests on ${FP32_VERSION}` });
  const steps: [string, () => Promise<unknown>, string][] = [
    ['swap to int8 on the native engine', () => running.agent.models.activate('digits', INT8, 'native'), INT8_VERSION],
    ['swap to 1.1.0', () => running.agent.models.activate('digits', v110, 'ort'), '1.1.0'],
    ['roll back', () => running.agent.models.rollback('digits'), INT8_VERSION],
  ];
  const swaps: { what: string; startAt: number; doneAt: number; version: string }[] = [];
  for (const [what, step, version] of steps) {
    const startAt = performance.now();
    await step();
    const doneAt = performance.now();
    swaps.push({ what, startAt, doneAt, version });
    await waitFor(() => seen(version, doneAt) >= 20, { timeoutMs: 30_000, what: `requests on ${version} after "${what}"` });
  }
  await t.rejects(running.agent.models.activate('digits', bad, 'ort'), { code: 'EDGE_PACKAGE_INVALID' }, 'bad package refused');
  const afterBad = performance.now();
  await waitFor(() => seen(INT8_VERSION, afterBad) >= 20, { timeoutMs: 30_000, what: 'requests after the bad package' });
  stop = true;
  await Promise.all(load);

  const failed = outcomes.filter((o) => o.status !== 200);
  t.equal(failed.length, 0, `zero failed requests out of ${outcomes.length} (${JSON.stringify(failed.slice(0, 3))})`);
  t.ok(outcomes.length >= 100, `${outcomes.length} requests during the swaps`);
  t.same([...new Set(readiness)], [200], `/readyz said ready on every one of ${readiness.length} polls`);
  // A request sent after one swap returned and answered before the next one started gets that
  // version (the bad package changes nothing, so the last window runs to the end).
  for (const [i, s] of swaps.entries()) {
    const until = swaps[i + 1]?.startAt ?? Infinity;
    const window = outcomes.filter((o) => o.startedAt >= s.doneAt && o.endedAt <= until);
    t.ok(window.length >= 10, `${window.length} requests after "${s.what}"`);
    t.same(window.filter((o) => o.version !== s.version), [], `after "${s.what}" returned, every request was answered by ${s.version}`);
  }
  const status = running.agent.models.list()[0] as { version: string; backend: string; previous: { version: string } };
  t.equal(status.version, INT8_VERSION);
  t.equal(status.backend, 'native', 'the rolled-back-to version is the native one');
  t.equal(status.previous.version, '1.1.0', 'the rolled-back-from version is kept as the previous one');
});

t.test('rollback without a previous version is refused and changes nothing', async (t) => {
  const running = await startAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }] });
  t.teardown(() => running.stop());
  await t.rejects(running.agent.models.rollback('digits'), { code: 'EDGE_NO_PREVIOUS_VERSION', message: /no previous version/ });
  await t.rejects(running.agent.models.rollback('nope'), { code: 'EDGE_MODEL_NOT_FOUND' });
  const res = await postJson(`${running.url}/v1/models/digits/infer`, { inputs: { input: { shape: [1, 1, 28, 28], data: Array.from(digitBatch(1, 1).data) } } });
  t.equal(res.body.version, FP32_VERSION);
});

t.test('a configured model is not ready until it has loaded and warmed up', async (t) => {
  const dir = tempDir('edge-agent-ready-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const agent = new Agent(parseConfig({
    deviceId: 'ready-test', dataDir: path.join(dir, 'data'), log: { level: 'silent' }, health: { port: 0 },
    security: { requireSignedPackages: false }, models: [{ name: 'digits', package: INT8, backend: 'ort' }], runtime: { warmup: 3 },
  }, 'test config', dir));
  t.teardown(() => agent.stop());
  const seen = new Set<string>();
  seen.add(agent.models.notReady() ?? 'ready');
  let done = false;
  const starting = agent.start().finally(() => (done = true));
  while (!done) {
    seen.add(agent.models.notReady() ?? 'ready');
    await new Promise((r) => setImmediate(r));
  }
  await starting;
  t.ok(seen.has('model digits is loading'), `said "loading" before the version was warm (${[...seen].join(' | ')})`);
  t.equal(agent.models.notReady(), undefined, 'ready once started');
  const v = (agent.models.list()[0] as { active: { warm: boolean; warmupMs: number } }).active;
  t.ok(v.warm && v.warmupMs > 0, `warmed up (${v.warmupMs} ms for 3 inferences)`);
  const res = await fetch(`${agent.url}/readyz`);
  t.equal(res.status, 200);
});

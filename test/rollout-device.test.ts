// The device side of a rollout, on a real agent serving real HTTP: a new version serves on
// probation and is committed, or rolled back without a person when it misbehaves.
import t from 'tap';
import { digitBatch, FP32, postJson, startAgent, tempDir, type RunningAgent } from './helpers/model-packages.js';
import { variantPackage } from './helpers/variant-models.js';
import { waitFor } from './helpers/wait.js';

const rollout = { probation: { minInferences: 30, minSeconds: 0, maxRestarts: 1 } };
// The good-version test is not about latency: a loaded CI machine must not fail it on p99.
const relaxed = { probation: { ...rollout.probation, maxLatencyRatio: 100 } };

async function infer(a: RunningAgent, i: number): Promise<{ status: number; body: any }> {
  const b = digitBatch(i % 500, 1);
  return postJson(`${a.url}/v1/models/digits/infer`, { inputs: { input: { shape: b.shape, data: Array.from(b.data) } } });
}

async function serve(a: RunningAgent, n: number, from = 0): Promise<string[]> {
  const versions: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await infer(a, from + i);
    if (r.status !== 200) throw new Error(`inference failed: ${r.status} ${JSON.stringify(r.body)}`);
    versions.push(r.body.version);
  }
  return versions;
}

const slotOf = (a: RunningAgent): any => (a.agent.rollouts.status() as Record<string, any>).digits;

t.test('a good version passes probation and is committed', async (t) => {
  const a = await startAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], rollout: relaxed });
  t.teardown(() => a.stop());
  await serve(a, 25);
  const v2 = variantPackage('good', '1.1.0', tempDir());
  await a.agent.rollouts.activate('digits', v2);
  t.match(slotOf(a), { active: '1.0.0', candidate: { version: '1.1.0', phase: 'probation' } }, 'the new version is the candidate');
  const served = await serve(a, 35);
  t.ok(served.every((v) => v === '1.1.0'), 'the candidate serves during probation');
  await waitFor(() => slotOf(a).active === '1.1.0' && !slotOf(a).candidate, { what: 'commit' });
  t.match(slotOf(a), { active: '1.1.0', previous: '1.0.0' }, 'committed; the old version is kept for rollback');
  t.match(a.agent.rollouts.rolloutState('digits', '1.1.0'), { state: 'committed' }, 'models/reported will say committed');
});

t.test('a version that outputs NaN is rolled back at its first answer; the old one serves on', async (t) => {
  const a = await startAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], rollout });
  t.teardown(() => a.stop());
  await serve(a, 5);
  await a.agent.rollouts.activate('digits', variantPackage('nan', '2.0.0-nan', tempDir()));
  await infer(a, 0); // the NaN answer that trips probation
  await waitFor(() => !slotOf(a).candidate, { what: 'rollback' });
  const after = await serve(a, 10, 100);
  t.ok(after.every((v) => v === '1.0.0'), 'every later request is served by 1.0.0');
  t.match(a.agent.rollouts.rolloutState('digits', '2.0.0-nan'), { state: 'rolled_back', reason: /NaN or Infinity/ });
  t.match(slotOf(a).events.at(-1), { step: 'rolled_back', version: '2.0.0-nan' }, 'the step is recorded with its reason');
  await t.rejects(a.agent.rollouts.activate('digits', variantPackage('nan', '2.0.0-nan', tempDir())), { code: 'EDGE_VERSION_ROLLED_BACK' },
    'the same version is not tried again');

  // An operator's rollback now would swap back to the version that just failed: refused,
  // naming it, unless forced.
  await t.rejects(a.agent.rollouts.rollback('digits'), { code: 'EDGE_VERSION_ROLLED_BACK', message: /2\.0\.0-nan, was rolled back on this device .*force: true/ },
    'a manual rollback does not re-activate the version that failed probation');
  t.ok((await serve(a, 3, 200)).every((v) => v === '1.0.0'), '1.0.0 still serves');
  await a.agent.rollouts.rollback('digits', { force: true });
  t.ok((await serve(a, 1, 300)).every((v) => v === '2.0.0-nan'), 'with force the operator gets what they asked for');
});

t.test('a version ten times slower is rolled back on its p99 against the previous version', async (t) => {
  const a = await startAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], rollout });
  t.teardown(() => a.stop());
  await serve(a, 150); // the baseline p99
  await a.agent.rollouts.activate('digits', variantPackage('slow', '3.0.0-slow', tempDir()));
  for (let i = 0; i < 120 && slotOf(a).candidate; i++) await infer(a, i);
  await waitFor(() => !slotOf(a).candidate, { what: 'rollback of the slow version' });
  t.match(a.agent.rollouts.rolloutState('digits', '3.0.0-slow'), { state: 'rolled_back', reason: /p99 latency .* more than 3x the previous version/ });
  t.comment(JSON.stringify(slotOf(a).events.at(-1)));
  t.equal((await infer(a, 1)).body.version, '1.0.0', '1.0.0 serves again');
});

t.test('a version that does not load is refused and the old one keeps serving', async (t) => {
  const a = await startAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], rollout });
  t.teardown(() => a.stop());
  await t.rejects(a.agent.rollouts.activate('digits', '/nonexistent/package'), { message: /nonexistent/ }, 'activation fails, naming the package');
  t.equal((await infer(a, 1)).body.version, '1.0.0');
  t.equal(slotOf(a).candidate, undefined);
});

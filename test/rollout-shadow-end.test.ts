// A halted rollout reaches a device whose candidate is still in shadow (agent/rollout/
// model-rollouts.ts): the controller either sends the version serving now again (a published
// baseline) or a models.rollback command (an unpublished one). Either way the shadow run ends,
// its version is reported rolled back and refused, and the serving version is untouched. A real
// agent in this process with real ONNX packages.
import t from 'tap';
import { FP32, FP32_VERSION, mixedDigit, postJson, startAgent, tempDir } from './helpers/model-packages.js';
import { variantPackage } from './helpers/variant-models.js';

t.setTimeout(60_000);

const config = {
  models: [{ name: 'digits', package: FP32, backend: 'ort' }],
  rollout: { shadow: { fraction: 1, minAgreement: 0, minSamples: 1000 } },
};

async function infer(url: string): Promise<{ version: string }> {
  const d = mixedDigit(3);
  const r = await postJson(`${url}/v1/models/digits/infer`, { inputs: { input: { shape: d.shape, data: Array.from(d.data) } } });
  if (r.status !== 200) throw new Error(`infer: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const shadowing = (list: unknown): unknown => (list as { name: string; rollout?: { shadow?: unknown } }[]).find((m) => m.name === 'digits')?.rollout?.shadow;

t.test('the serving version sent again ends the shadow run of another', async (t) => {
  const a = await startAgent(config);
  t.teardown(() => a.stop());
  const candidate = variantPackage('constant', '2.0.0-constant', tempDir());
  t.match(await a.agent.rollouts.activate('digits', candidate), { state: 'shadow' }, 'the candidate goes to shadow first');
  t.equal(a.agent.rollouts.rolloutState('digits', '2.0.0-constant')?.state, 'shadow');
  t.ok(shadowing(a.agent.rollouts.list()), 'the shadow run shows in the model list');
  const again = variantPackage('good', FP32_VERSION, tempDir());
  t.match(await a.agent.rollouts.activate('digits', again), { version: FP32_VERSION, state: 'active' }, 'the serving version again: nothing to load');
  t.match(a.agent.rollouts.rolloutState('digits', '2.0.0-constant'), { state: 'rolled_back', reason: `the desired version went back to ${FP32_VERSION}` });
  t.equal(shadowing(a.agent.rollouts.list()), undefined, 'no shadow run any more');
  t.equal((await infer(a.url)).version, FP32_VERSION, 'the serving version still answers');
  await t.rejects(a.agent.rollouts.activate('digits', candidate), /rolled back on this device/, 'and the candidate is refused from now on');
});

t.test('a rollback command during the shadow phase ends the shadow run', async (t) => {
  const a = await startAgent(config);
  t.teardown(() => a.stop());
  await a.agent.rollouts.activate('digits', variantPackage('constant', '2.0.0-constant', tempDir()));
  t.ok(shadowing(a.agent.rollouts.list()), 'in shadow');
  t.match(await a.agent.rollouts.rollback('digits'), { version: FP32_VERSION, state: 'active' });
  t.match(a.agent.rollouts.rolloutState('digits', '2.0.0-constant'), { state: 'rolled_back', reason: 'rolled back by command' });
  t.equal(shadowing(a.agent.rollouts.list()), undefined, 'no shadow run any more');
  t.equal((await infer(a.url)).version, FP32_VERSION, 'the serving version still answers');
});

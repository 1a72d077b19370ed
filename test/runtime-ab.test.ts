// A/B splits serve the configured share from the candidate; shadow runs never change an answer.
import t from 'tap';
import { digitBatch, FP32, postJson, startAgent, tempDir } from './helpers/model-packages.js';
import { variantPackage } from './helpers/variant-models.js';
import { waitFor } from './helpers/wait.js';

const body = (i: number) => {
  const b = digitBatch(i % 200, 1);
  return { inputs: { input: { shape: b.shape, data: Array.from(b.data) } } };
};

t.test('an A/B split honours its fraction within statistical tolerance', async (t) => {
  const a = await startAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }] });
  t.teardown(() => a.stop());
  await a.agent.models.startAB('digits', variantPackage('good', '1.1.0', tempDir()), 0.3);
  const n = 400;
  let b = 0;
  for (let i = 0; i < n; i++) {
    const r = await postJson(`${a.url}/v1/models/digits/infer`, body(i));
    t.equal(r.status, 200);
    if (r.body.version === '1.1.0') b++;
  }
  // Binomial(400, 0.3): mean 120, sd 9.2; 4 sd either side fails about once in 16,000 runs.
  t.ok(Math.abs(b - 120) <= 37, `arm B served ${b} of ${n} (expected 120 +- 37)`);
  const stopped = await a.agent.models.stopAB('digits');
  t.same(stopped?.served, { a: n - b, b }, 'the per-arm counters agree with what was served');
  t.rejects(a.agent.models.startAB('digits', FP32, 1.5), { code: 'EDGE_BAD_REQUEST' }, 'a fraction outside (0, 1) is refused');
});

t.test('a shadow run never changes a served answer, even when the candidate outputs NaN', async (t) => {
  const a = await startAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }] });
  t.teardown(() => a.stop());
  const before: number[][] = [];
  for (let i = 0; i < 20; i++) before.push((await postJson(`${a.url}/v1/models/digits/infer`, body(i))).body.outputs.logits.data);
  t.equal(before[0]?.length, 10, 'ten logits per answer');
  const comparisons: unknown[] = [];
  a.agent.models.onShadowResult((c) => comparisons.push(c));
  await a.agent.models.startShadow('digits', variantPackage('nan', '9.9.9-nan', tempDir()), 1);
  for (let i = 0; i < 20; i++) {
    const r = await postJson(`${a.url}/v1/models/digits/infer`, body(i));
    t.equal(r.body.version, '1.0.0');
    t.same(r.body.outputs.logits.data, before[i], `answer ${i} is the active version's`);
  }
  await waitFor(() => comparisons.length >= 20, { what: 'every request shadowed' });
});

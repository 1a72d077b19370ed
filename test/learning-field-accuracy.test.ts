// Field accuracy per model version on the device (agent/learning/field-accuracy.ts): a label
// scores the version that answered, and the shadow candidate's prediction for the same answer
// (whichever comes first, the label or the shadow run), per batch row. Then a real agent in
// this process with real ONNX models: a shadow candidate that answers one class whatever the
// input, and an A/B split with a model that names digits 0-4 one too high; the tallies the
// agent reports equal the counts from its own answers and the labels.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { FieldAccuracy } from '../agent/learning/field-accuracy.js';
import { FieldExamples } from '../agent/learning/field-examples.js';
import type { InferenceEvent } from '../agent/runtime/inference-events.js';
import type { ShadowComparison } from '../agent/runtime/shadow.js';
import { FP32, FP32_VERSION, mixedDigit, postJson, startAgent, tempDir } from './helpers/model-packages.js';
import { CONSTANT_CLASS, variantPackage } from './helpers/variant-models.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(90_000);

const post = { output: 'logits', softmax: true, argmax: true };
/** An answer of `version` whose top-1 per row is `top1`. */
function answer(version: string, top1: number[]): InferenceEvent {
  const logits = new Float32Array(top1.length * 10);
  top1.forEach((c, r) => (logits[r * 10 + c] = 5));
  return {
    id: randomUUID(), model: 'digits', version, backend: 'ort', latencyMs: 1, ok: true,
    inputs: {}, outputs: { logits: { dtype: 'float32', shape: [top1.length, 10], data: logits } },
    predictions: top1.map((index) => ({ index, score: 0.9 })), postprocessing: post,
  };
}
const shadowOf = (candidate: string, top1: number[]): ShadowComparison => ({
  model: 'digits', active: '1.0.0', candidate, rows: top1.length, top1Agreement: 0, meanAbsDiff: 0, activeLatencyMs: 1, candidateLatencyMs: 1, candidateTop1: top1,
});

function setup() {
  const acc = new FieldAccuracy({ reportEveryMs: 10 });
  const fx = new FieldExamples({ policies: new Map(), windowSeconds: 60, windowEntries: 100, record: () => undefined, scores: acc });
  return { acc, fx };
}

t.test('a label scores the answering version and its shadow candidate on the same rows', async (t) => {
  const { acc, fx } = setup();
  t.equal(acc.report('digits'), undefined, 'nothing before the first label');

  // Shadow result first, then the label (the usual order).
  const a = answer('1.0.0', [7]);
  fx.observe(a);
  fx.shadowResult(shadowOf('2.0.0', [1]), a.id);
  fx.feedback('digits', { id: a.id, label: 7 });
  // The label first, then the shadow run finishes.
  const b = answer('1.0.0', [3]);
  fx.observe(b);
  fx.feedback('digits', { id: b.id, label: 1 });
  t.same(acc.report('digits')!.pairs, [{ primary: '1.0.0', shadow: '2.0.0', labelled: 1, primaryCorrect: 1, shadowCorrect: 0 }], 'b has no pair until its shadow run ends');
  fx.shadowResult(shadowOf('2.0.0', [1]), b.id);
  // A batch of three rows: each row is a labelled request.
  const c = answer('1.0.0', [2, 4, 6]);
  fx.observe(c);
  fx.shadowResult(shadowOf('2.0.0', [2, 1, 1]), c.id);
  fx.feedback('digits', { id: c.id, label: [2, 4, 1] });
  // An answer the shadow did not mirror: the served version only.
  const d = answer('1.0.0', [0]);
  fx.observe(d);
  fx.feedback('digits', { id: d.id, label: 0 });

  t.same(acc.report('digits'), {
    versions: { '1.0.0': { labelled: 6, correct: 4 }, '2.0.0': { labelled: 5, correct: 3 } },
    pairs: [{ primary: '1.0.0', shadow: '2.0.0', labelled: 5, primaryCorrect: 3, shadowCorrect: 3 }],
  }, 'per version and paired, per row');
  fx.shadowResult(shadowOf('2.0.0', [1]), b.id);
  t.equal(acc.report('digits')!.pairs[0]!.labelled, 5, 'a shadow result is scored once');
  t.throws(() => fx.feedback('digits', { id: a.id, label: 7 }), /already labelled|labelled once|duplicate/i, 'a second label for an answer is refused, not counted');
  t.equal(acc.report('digits')!.versions['1.0.0']!.labelled, 6);
});

t.test('new labels are reported at most every reportEveryMs', async (t) => {
  const { acc, fx } = setup();
  let reports = 0;
  acc.onChange(() => reports++);
  for (let i = 0; i < 5; i++) {
    const a = answer('1.0.0', [i]);
    fx.observe(a);
    fx.feedback('digits', { id: a.id, label: i });
  }
  await waitFor(() => reports === 1, { timeoutMs: 5000, what: 'one report for a burst of labels' });
  t.equal(acc.report('digits')!.versions['1.0.0']!.labelled, 5);
  acc.stop();
});

t.test('a real agent: a constant-class shadow candidate and an A/B split, scored on real digits', async (t) => {
  const constant = variantPackage('constant', '2.0.0-constant', tempDir());
  const a = await startAgent({
    models: [{ name: 'digits', package: FP32, backend: 'ort' }],
    runtime: { shadows: [{ model: 'digits', package: constant, fraction: 1, backend: 'ort' }] },
  });
  t.teardown(() => a.stop());
  const mirrored = new Set<string>();
  a.agent.models.onShadowResult((_c, id) => { if (id) mirrored.add(id); });

  const N = 40;
  const digits = { labels: [] as number[], rows: [] as Float32Array[] };
  for (let i = 0; i < 2 * N; i++) {
    const d = mixedDigit(i);
    digits.labels.push(d.labels[0]!);
    digits.rows.push(d.data);
  }
  let primaryCorrect = 0, shadowCorrect = 0;
  for (let i = 0; i < N; i++) {
    const r = await postJson(`${a.url}/v1/models/digits/infer`, { inputs: { input: { shape: [1, 1, 28, 28], data: Array.from(digits.rows[i]!) } } });
    t.equal(r.status, 200);
    // One shadow run at a time: the next request waits until this one was mirrored, or it would be skipped.
    await waitFor(() => mirrored.has(r.body.id), { timeoutMs: 10_000, what: `answer ${i} mirrored to the shadow candidate` });
    const label = digits.labels[i]!;
    if (r.body.predictions[0].index === label) primaryCorrect++;
    if (label === CONSTANT_CLASS) shadowCorrect++;
    const fb = await postJson(`${a.url}/v1/models/digits/feedback`, { id: r.body.id, label });
    t.equal(fb.status, 200);
  }
  const field = a.agent.rollouts.rolloutState('digits', FP32_VERSION)?.field;
  t.same(field?.pairs, [{ primary: FP32_VERSION, shadow: '2.0.0-constant', labelled: N, primaryCorrect, shadowCorrect }], 'both versions scored on the same 40 digits');
  t.ok(primaryCorrect >= 0.8 * N, `the digits model is right on most (${primaryCorrect} of ${N})`);
  t.ok(shadowCorrect < N / 4, `the constant candidate on few (${shadowCorrect} of ${N})`);

  // A/B: each answer is scored for the version that served it; no pair.
  await a.agent.models.stopShadow('digits');
  const rotated = variantPackage('rotated', '3.0.0-rotated', tempDir());
  await a.agent.models.startAB('digits', rotated, 0.5, 'ort');
  const served: Record<string, { labelled: number; correct: number }> = {};
  for (let i = 0; i < N; i++) {
    const r = await postJson(`${a.url}/v1/models/digits/infer`, { inputs: { input: { shape: [1, 1, 28, 28], data: Array.from(digits.rows[N + i]!) } } });
    const s = (served[r.body.version] ??= { labelled: 0, correct: 0 });
    s.labelled++;
    if (r.body.predictions[0].index === digits.labels[N + i]) s.correct++;
    t.equal((await postJson(`${a.url}/v1/models/digits/feedback`, { id: r.body.id, label: digits.labels[N + i] })).status, 200);
  }
  t.ok(served['3.0.0-rotated']?.labelled, `the B arm served some (${JSON.stringify(served)})`);
  const after = a.agent.rollouts.rolloutState('digits', FP32_VERSION)?.field;
  t.same(after?.versions['3.0.0-rotated'], served['3.0.0-rotated'], 'the B arm: its own answers');
  t.same(after?.versions[FP32_VERSION], { labelled: N + served[FP32_VERSION]!.labelled, correct: primaryCorrect + served[FP32_VERSION]!.correct }, 'the A arm: the earlier answers and its share now');
  t.equal(after?.pairs.length, 1, 'A/B answers make no pair');
});

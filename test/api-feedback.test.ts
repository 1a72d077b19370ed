// POST /v1/models/:name/feedback against a real agent over HTTP: every answer carries an id;
// a label for it is taken once (with the prediction, and the example when the model has a
// capture policy); bad ids, labels of the wrong type and unknown models get a clear 4xx and
// nothing is stored in the telemetry buffer.
import t from 'tap';
t.setTimeout(60_000);
import { randomUUID } from 'node:crypto';
import { digitBatch, FP32, postJson, startAgent } from './helpers/model-packages.js';

const agentP = startAgent({
  models: [
    { name: 'plain', package: FP32, backend: 'ort' },
    { name: 'capturing', package: FP32, backend: 'ort', capture: { confidenceBelow: 0 } },
    { name: 'sampled', package: FP32, backend: 'ort', capture: { randomRate: 1, maxBytesPerDay: 3 * 8000 } },
  ],
  runtime: { threads: 1 },
});
t.teardown(async () => (await agentP).stop());

const url = async (p: string) => `${(await agentP).url}${p}`;
const stream = async (name: string) => {
  const s = await (await fetch(await url('/v1/telemetry'))).json() as { streams: Record<string, { accepted: number }> };
  return s.streams[name]?.accepted ?? 0;
};
async function answer(model: string, count = 1) {
  const b = digitBatch(0, count);
  const r = await postJson(await url(`/v1/models/${model}/infer`), { inputs: { input: { shape: b.shape, data: Array.from(b.data) } } });
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  return { ...r.body, labels: b.labels };
}
const feedback = async (model: string, body: unknown, raw?: string) => postJson(await url(`/v1/models/${model}/feedback`), body, raw);

t.test('every answer has an id; bad feedback is a clear 4xx and stores nothing', async (t) => {
  const a = await answer('plain');
  t.match(a.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.not((await answer('plain')).id, a.id, 'ids differ');
  const batch = await answer('plain', 2);
  const cases: [string, unknown, number, string, RegExp, string?][] = [
    ['nope', { id: a.id, label: 1 }, 404, 'EDGE_MODEL_NOT_FOUND', /nope/],
    ['plain', { id: 'abc', label: 1 }, 400, 'EDGE_FEEDBACK_INVALID', /"id" must be the "id" of an inference answer/],
    ['plain', { id: 42, label: 1 }, 400, 'EDGE_FEEDBACK_INVALID', /"id" must be/],
    ['plain', { id: randomUUID(), label: 1 }, 404, 'EDGE_ANSWER_NOT_FOUND', /no answer with id/],
    ['capturing', { id: a.id, label: 1 }, 404, 'EDGE_ANSWER_NOT_FOUND', /model capturing gave no answer/],
    ['plain', { id: a.id, label: 'seven' }, 400, 'EDGE_FEEDBACK_INVALID', /not one of .* classes/],
    ['plain', { id: a.id, label: -1 }, 400, 'EDGE_FEEDBACK_INVALID', /class index \(0\.\.9\)/],
    ['plain', { id: a.id, label: true }, 400, 'EDGE_FEEDBACK_INVALID', /class index/],
    ['plain', { id: a.id, label: { x: 1 } }, 400, 'EDGE_FEEDBACK_INVALID', /class index/],
    ['plain', { id: batch.id, label: 1 }, 400, 'EDGE_FEEDBACK_INVALID', /has 2 rows; send "label" as an array/],
    ['plain', { id: a.id, label: 1, version: 'x' }, 400, 'EDGE_FEEDBACK_INVALID', /unknown key "version"/],
    ['plain', null, 400, 'EDGE_FEEDBACK_INVALID', /must be a JSON object/, 'null'],
    ['plain', null, 400, 'EDGE_BAD_REQUEST', /JSON|json/i, '{"id": '],
  ];
  for (const [model, body, status, code, message, raw] of cases) {
    const r = await feedback(model, body, raw);
    t.equal(r.status, status, `${model} ${raw ?? JSON.stringify(body)}: ${status}`);
    if (code !== 'EDGE_BAD_REQUEST') t.equal(r.body?.error?.code, code);
    t.match(r.body?.error?.message ?? JSON.stringify(r.body), message);
  }
  t.equal(await stream('feedback'), 0, 'no feedback stored');
  t.equal(await stream('examples'), 0, 'no example stored');
});

t.test('a label is taken once: with the prediction (no policy), with the example (capture policy)', async (t) => {
  const a = await answer('plain');
  const r = await feedback('plain', { id: a.id, label: a.labels[0] });
  t.equal(r.status, 200);
  t.same(r.body, { id: a.id, example: false, correct: a.predictions[0].index === a.labels[0] });
  const again = await feedback('plain', { id: a.id, label: a.labels[0] });
  t.equal(again.status, 409);
  t.equal(again.body.error.code, 'EDGE_FEEDBACK_DUPLICATE');
  t.equal(await stream('feedback'), 1);
  t.equal(await stream('examples'), 0, 'no input kept without a capture policy');

  const c = await answer('capturing', 2);
  t.equal(await stream('examples'), 0, 'a policy with no trigger keeps nothing by itself');
  const named = await feedback('capturing', { id: c.id, label: c.labels.map(String) });
  t.equal(named.status, 200, JSON.stringify(named.body));
  t.equal(named.body.example, true, 'the answer still in the window is kept as an example');
  t.equal(await stream('examples'), 1);
  t.equal(await stream('feedback'), 2);
  const stats = await (await fetch(await url('/v1/learning'))).json() as { kept: Record<string, number>; feedback: { accepted: number; withExample: number } };
  t.equal(stats.kept.feedback, 1);
  t.same(stats.feedback, { accepted: 2, withExample: 1 });
});

t.test('a capture policy keeps served inferences within its day budget; feedback labels a kept one', async (t) => {
  const before = await stream('examples');
  const answers = [];
  for (let i = 0; i < 5; i++) answers.push(await answer('sampled'));
  const kept = (await stream('examples')) - before;
  // One digit's example is ~4.5 kB of JSON (784 float32 in base64 and 10 logits): 24000 bytes a day hold 5.
  t.equal(kept, 5, `${kept} examples kept`);
  for (let i = 0; i < 3; i++) await answer('sampled');
  const stats = await (await fetch(await url('/v1/learning'))).json() as { kept: Record<string, number>; bytesToday: Record<string, number>; refused: { dayBudget: number } };
  t.ok(stats.bytesToday.sampled! <= 24000, `${stats.bytesToday.sampled} bytes kept today <= 24000`);
  t.equal(stats.kept.random + stats.refused.dayBudget, 8, 'every inference kept or refused for the day budget');
  t.ok(stats.refused.dayBudget >= 1, 'the day budget refused some');
  const r = await feedback('sampled', { id: answers[0].id, label: answers[0].labels[0] });
  t.equal(r.body.example, true, 'the label attaches to the kept example');
  t.equal((await stream('examples')) - before, stats.kept.random, 'no second copy of the example');
});

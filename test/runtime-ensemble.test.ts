// Ensembles (mean, weighted mean, majority vote of member models) served like any model, and
// shadow runs of a candidate whose agreement lands in the real telemetry buffer.
import t from 'tap';
import { waitFor } from './helpers/wait.js';
import { argmax, digitBatch, FP32, INT8, postJson, startAgent, FP32_VERSION, INT8_VERSION } from './helpers/model-packages.js';

const softmax = (row: number[]): number[] => {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const rowsOf = (data: number[], n: number): number[][] => Array.from({ length: data.length / n }, (_, i) => data.slice(i * n, i * n + n));

const agentP = startAgent({
  models: [{ name: 'fp32', package: FP32, backend: 'ort' }, { name: 'int8', package: INT8, backend: 'ort' }],
  runtime: {
    ensembles: [
      { name: 'both-mean', members: ['fp32', 'int8'], fusion: 'mean' },
      { name: 'both-weighted', members: ['fp32', 'int8'], fusion: 'weighted', weights: [3, 1] },
      { name: 'both-vote', members: ['fp32', 'int8'], fusion: 'vote' },
    ],
    shadows: [{ model: 'fp32', package: INT8, fraction: 0.5, backend: 'ort' }],
  },
});
t.teardown(async () => (await agentP).stop());

t.test('ensembles fuse their members as declared', async (t) => {
  const { url } = await agentP;
  const batch = digitBatch(200, 12);
  const body = { inputs: { input: { shape: batch.shape, data: Array.from(batch.data) } } };
  const [a, b] = await Promise.all(['fp32', 'int8'].map((m) => postJson(`${url}/v1/models/${m}/infer`, body)));
  const pa = rowsOf(a!.body.outputs.logits.data, 10).map(softmax);
  const pb = rowsOf(b!.body.outputs.logits.data, 10).map(softmax);
  const expected: Record<string, number[][]> = {
    'both-mean': pa.map((r, i) => r.map((v, k) => (v + pb[i]![k]!) / 2)),
    'both-weighted': pa.map((r, i) => r.map((v, k) => (3 * v + pb[i]![k]!) / 4)),
    'both-vote': pa.map((r, i) => r.map((_, k) => (argmax(r) === k ? 0.5 : 0) + (argmax(pb[i]!) === k ? 0.5 : 0))),
  };
  for (const [name, want] of Object.entries(expected)) {
    const res = await postJson(`${url}/v1/models/${name}/infer`, body);
    t.equal(res.status, 200, `${name}: 200`);
    t.equal(res.body.backend, 'ensemble');
    t.equal(res.body.version, `fp32@${FP32_VERSION}+int8@${INT8_VERSION}`, `${name}: names its members' versions`);
    t.same(res.body.outputs.scores.shape, [12, 10]);
    const got = rowsOf(res.body.outputs.scores.data, 10);
    const worst = Math.max(...got.flatMap((r, i) => r.map((v, k) => Math.abs(v - want[i]![k]!))));
    t.ok(worst < 1e-5, `${name}: fused scores match the members' (largest difference ${worst})`);
    t.same(res.body.predictions.map((p: { index: number }) => p.index), got.map((r) => argmax(r)), `${name}: predictions are the fused argmax`);
    t.equal(res.body.predictions[0].label, String(res.body.predictions[0].index), `${name}: labels from the members' manifest`);
  }
  const bad = await postJson(`${url}/v1/models/both-mean/infer`, { inputs: { input: [[1, 2]] } });
  t.equal(bad.status, 400, 'an ensemble checks its inputs too');
  const list = await (await fetch(`${url}/v1/models`)).json() as { models: { name: string; kind: string; ready: boolean; fusion?: string }[] };
  t.same(list.models.filter((m) => m.kind === 'ensemble').map((m) => [m.name, m.fusion, m.ready]), [
    ['both-mean', 'mean', true], ['both-weighted', 'weighted', true], ['both-vote', 'vote', true],
  ]);
});

t.test('a shadow candidate answers its share off the request path; agreement goes to telemetry', async (t) => {
  const { url, agent } = await agentP;
  const summary = () => (agent.models.list().find((m) => m.name === 'fp32') as { shadow: Record<string, number> }).shadow;
  const before = { ...summary() }; // the first test's request to fp32 may have been mirrored already
  t.equal(before.fraction, 0.5);
  let sameTop1 = 0;
  for (let i = 0; i < 20; i++) {
    const one = digitBatch(300 + i, 1);
    const body = { inputs: { input: { shape: one.shape, data: Array.from(one.data) } } };
    const res = await postJson(`${url}/v1/models/fp32/infer`, body);
    t.equal(res.body.version, FP32_VERSION, 'answered by the active version');
    const cand = await postJson(`${url}/v1/models/int8/infer`, body);
    if (res.body.predictions[0].index === cand.body.predictions[0].index) sameTop1++;
  }
  const mirrored = () => summary().runs + summary().skipped - before.runs - before.skipped;
  await waitFor(() => mirrored() >= 10, { timeoutMs: 10_000, what: 'shadow runs of 10 mirrored requests' });
  const s = summary();
  t.equal(mirrored(), 10, 'exactly half of 20 requests were mirrored');
  t.ok(s.runs >= 1, `${s.runs} shadow runs (${s.skipped} skipped while one was running)`);
  t.equal(s.failures, 0);
  t.ok(s.top1Agreement >= (sameTop1 - 10) / 20 && s.top1Agreement <= 1, `top-1 agreement ${s.top1Agreement} (models agree on ${sameTop1}/20 overall)`);
  // The telemetry buffer holds one "shadow" record per run.
  const lease = agent.telemetry.lease(1024 * 1024, { stream: 'shadow' });
  t.ok(lease, 'shadow records in the telemetry buffer');
  const payloads = lease!.records.map((r) => r.payload as Record<string, number | string>);
  t.equal(payloads.length, s.runs, 'one record per shadow run');
  for (const p of payloads.slice(before.runs)) {
    t.match(p, { model: 'fp32', active: FP32_VERSION, candidate: INT8_VERSION, rows: 1 });
    t.ok([0, 1].includes(p.top1Agreement as number), 'top-1 agreement of one row is 0 or 1');
    t.ok((p.meanAbsDiff as number) >= 0 && (p.meanAbsDiff as number) < 0.5, `mean absolute difference ${p.meanAbsDiff}`);
    t.ok((p.candidateLatencyMs as number) > 0 && (p.activeLatencyMs as number) > 0, 'latencies of both');
  }
  const rows = payloads.reduce((a, p) => a + (p.rows as number), 0);
  const agreeing = payloads.reduce((a, p) => a + (p.top1Agreement as number) * (p.rows as number), 0);
  t.equal(s.top1Agreement, agreeing / rows, 'the status summary is the records\' agreement');
  agent.telemetry.ack(lease!.id);
  const stopped = await agent.models.stopShadow('fp32');
  t.equal(stopped?.runs, s.runs);
  t.notOk(summary(), 'no shadow after stopShadow');
});

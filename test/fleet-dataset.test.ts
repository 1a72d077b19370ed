// Issue 21 item 2 end to end: a real Mosquitto, the controller and a real agent serving the
// digits model with a capture policy that keeps every inference. Inferences and feedback over
// HTTP become examples and labels in the device's telemetry, arrive at the controller's SQLite
// database, and `edge-fleet dataset` (the installed bin) exports them: every labelled example
// in the split its id hashes to with the label sent, the unlabelled ones apart, the inputs as
// the device saw them.
import t from 'tap';
// One broker, one agent, a dozen inferences, the build of dist/ when a source is newer (shared
// with the other CLI tests) and one CLI run: 3 minutes leaves room on a loaded machine.
t.setTimeout(180_000);
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startAgent, startController, tempDir } from './fleet-support.js';
import { argmax, digitBatch, FP32, FP32_VERSION, postJson, root } from './helpers/model-packages.js';
import { ensureBuilt } from './helpers/edge-model-cli.js';
import { readNpy } from '../agent/tensor/npy.js';
import { splitOf } from '../controller/dataset.js';

ensureBuilt();

t.test('inferences and feedback on a device become a dataset at the controller', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const work = tempDir('edge-fleet-dataset-');
  t.teardown(() => work.remove());
  const db = path.join(work.dir, 'fleet.db');
  const c = await startController(broker.url, { clientId: 'ctl-dataset', db });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : c.stop()));
  const a = await startAgent(broker.url, 'ds-dev-1', {
    mqtt: { backlogSpreadMs: 0 },
    models: [{ name: 'digits', package: FP32, backend: 'ort', capture: { randomRate: 1, maxBytesPerDay: 10_000_000, maxBytesPerExample: 100_000 } }],
  });
  t.teardown(() => a.stop());

  const n = 12;
  const batch = digitBatch(0, n);
  const labels = new Map<string, number>();
  const unlabelled: string[] = [];
  for (let i = 0; i < n; i++) {
    const ans = await postJson(`${a.agent.url}/v1/models/digits/infer`, { inputs: { input: { shape: [1, 1, 28, 28], data: Array.from(batch.data.subarray(i * 784, (i + 1) * 784)) } } });
    t.equal(ans.status, 200);
    const id = ans.body.id as string;
    if (i % 4 === 3) {
      unlabelled.push(id);
      continue;
    }
    const predicted = argmax(ans.body.outputs.logits.data);
    const label = i % 3 === 0 ? (predicted + 1) % 10 : predicted;
    const fb = await postJson(`${a.agent.url}/v1/models/digits/feedback`, { id, label });
    t.equal(fb.status, 200, JSON.stringify(fb.body));
    t.match(fb.body, { id, example: true, correct: label === predicted });
    labels.set(id, label);
  }
  const records = (stream: string) => c.store.telemetrySummary('ds-dev-1').find((s) => s.stream === stream)?.records ?? 0;
  await waitFor(() => records('examples') >= n && records('feedback') >= labels.size, { timeoutMs: 30_000, intervalMs: 50, what: `${n} examples and ${labels.size} labels at the controller` });
  await c.stop();
  stopped = true;

  const out = path.join(work.dir, 'field');
  const r = spawnSync(process.execPath, [path.join(root, 'bin/edge-fleet.js'), 'dataset', 'digits', '--version', FP32_VERSION, '--out', out, '--db', db, '--json'],
    { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, r.stderr);
  const counts = JSON.parse(r.stdout).counts as { split: string; examples: number; labels: number; perClass: Record<string, number> }[];
  const bySplit = new Map<string, string[]>();
  for (const [id] of labels) bySplit.set(splitOf(id), [...(bySplit.get(splitOf(id)) ?? []), id].sort());
  for (const s of ['train', 'validation', 'test']) {
    const ids = bySplit.get(s) ?? [];
    t.equal(counts.find((x) => x.split === s)!.examples, ids.length, `${s}: ${ids.length} examples`);
    if (!ids.length) continue;
    const files = readdirSync(path.join(out, s)).filter((f) => f.endsWith('.npy')).sort();
    t.same(files.map((f) => f.slice(7, -4)), ids, `${s}: the labelled examples whose id hashes to it`);
    t.same(readFileSync(path.join(out, s, 'labels.txt'), 'utf8').trim().split('\n').map(Number), ids.map((id) => labels.get(id)), `${s}: the labels sent, in file-name order`);
    const x = readNpy(path.join(out, s, files[0]!));
    t.same([x.dtype, x.shape], ['float32', [1, 1, 28, 28]], `${s}: the input as the device saw it`);
  }
  const un = readdirSync(path.join(out, 'unlabelled')).map((f) => f.slice(7, -4)).sort();
  t.same(un, [...unlabelled].sort(), 'the unlabelled examples apart');
  const perClass: Record<string, number> = {};
  for (const l of labels.values()) perClass[l] = (perClass[l] ?? 0) + 1;
  const summed: Record<string, number> = {};
  for (const c of counts) for (const [k, v] of Object.entries(c.perClass)) summed[k] = (summed[k] ?? 0) + v;
  t.same(summed, perClass, 'per class, over the splits');
});

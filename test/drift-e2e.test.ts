// End to end: the digits model served by a real agent with a drift reference in its package;
// held-out digits, then inverted ones, sent to the local inference API; the drift reports travel
// over a real Mosquitto to the controller, which stores them; `edge-fleet drift` (a child
// process) shows the device, the drifted features and the fleet verdict.
import t from 'tap';
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { buildReference, type DriftReport, type DriftSample } from '../agent/drift/index.js';
import { publishPackage } from '../controller/publish.js';
import { heldOutDigits, trainingDigits, DIGIT_PIXELS } from '../tools/edge-model/digits.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startAgent, startController, tempDir } from './fleet-support.js';

const run = promisify(execFile);
const INT8 = path.resolve('models/digits-int8');

/** The digits package with a drift reference built from training digits (as edge-model pack --calib does). */
async function packageWithReference(dir: string): Promise<string> {
  const pkg = path.join(dir, 'digits-drift');
  cpSync(INT8, pkg, { recursive: true });
  const session = await ort.InferenceSession.create(path.join(pkg, 'model.onnx'));
  const train = trainingDigits();
  const samples: DriftSample[] = [];
  for (let start = 0; start < 800; start += 100) {
    // every tenth training digit: all classes, in the set's proportions
    const data = new Float32Array(100 * DIGIT_PIXELS);
    for (let i = 0; i < 100; i++) {
      const k = ((start + i) * 10) % train.count;
      data.set(train.images.subarray(k * DIGIT_PIXELS, (k + 1) * DIGIT_PIXELS), i * DIGIT_PIXELS);
    }
    const out = await session.run({ input: new ort.Tensor('float32', data, [100, 1, 28, 28]) });
    samples.push({
      inputs: { input: { dtype: 'float32', shape: [100, 1, 28, 28], data } },
      outputs: { logits: { dtype: 'float32', shape: [...out.logits.dims], data: out.logits.data as Float32Array } },
    });
  }
  await session.release();
  const reference = buildReference(samples, {
    inputs: [{ kind: 'image', tensor: 'input', channelAxis: 1 }],
    outputs: [{ kind: 'class', tensor: 'logits' }, { kind: 'confidence', tensor: 'logits', softmax: true }],
  });
  const file = path.join(pkg, 'manifest.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), drift: reference }, null, 2));
  return pkg;
}

/** `count` held-out digits (spread over all classes), optionally inverted, as one request body. */
function digits(from: number, count: number, invert: boolean): unknown {
  const test = heldOutDigits();
  const data = new Float32Array(count * DIGIT_PIXELS);
  for (let i = 0; i < count; i++) {
    const k = ((from + i) * 10) % test.count; // the set is sorted by digit: every tenth covers every class
    for (let p = 0; p < DIGIT_PIXELS; p++) {
      const v = test.images[k * DIGIT_PIXELS + p];
      data[i * DIGIT_PIXELS + p] = invert ? 1 - v : v;
    }
  }
  return { inputs: { input: { shape: [count, 1, 28, 28], dtype: 'float32', base64: Buffer.from(data.buffer).toString('base64') } } };
}

t.test('inverted digits: a drift report on MQTT, stored by the controller, shown by edge-fleet drift', async (t) => {
  const tmp = tempDir('edge-drift-e2e-');
  t.teardown(() => tmp.remove());
  const pkg = await packageWithReference(tmp.dir);
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const db = path.join(tmp.dir, 'fleet.db');
  const c = await startController(broker.url, { db });
  t.teardown(() => c.stop());
  const a = await startAgent(broker.url, 'dev-e2e', {
    models: [{ name: 'digits', package: pkg, backend: 'native' }],
    runtime: { threads: 1 },
    drift: { windowInferences: 200, minWindowSize: 100, sampleEvery: 1 },
  });
  t.teardown(() => a.stop());
  const url = a.agent.url;
  await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, { timeoutMs: 30_000, what: 'the agent ready with the digits model' });

  const infer = async (body: unknown) => {
    const res = await fetch(`${url}/v1/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    t.equal(res.status, 200, 'inference served');
    await res.arrayBuffer();
  };
  // Window 1: ordinary held-out digits. Window 2: the same digits inverted (white background).
  for (let i = 0; i < 10; i++) await infer(digits(i * 20, 20, false));
  for (let i = 0; i < 10; i++) await infer(digits(i * 20, 20, true));

  const stored = await waitFor(() => {
    const reps = c.store.driftReports(100).filter((r) => r.deviceId === 'dev-e2e');
    return reps.length >= 2 ? reps : undefined;
  }, { timeoutMs: 30_000, what: 'two drift reports of dev-e2e at the controller' });
  const byWindow = stored.map((r) => r.report as DriftReport).sort((x, y) => x.window.seq - y.window.seq);
  const [plain, inverted] = byWindow;
  t.match(plain, { model: 'digits', version: '1.0.0-int8', deviceId: 'dev-e2e', window: { seq: 1, size: 200 } });
  t.not(plain.verdict, 'alert', `held-out digits: no alert (${plain.verdict}; ${plain.features.filter((f) => f.verdict !== 'ok').map((f) => `${f.name}: ${f.reasons.join('; ')}`).join(' | ') || 'all ok'})`);
  t.equal(inverted.window.seq, 2);
  t.equal(inverted.verdict, 'alert', 'inverted digits: alert');
  t.ok(inverted.dataset.drifted, `dataset drifted: ${inverted.dataset.driftedFeatures.join(', ')}`);
  t.ok(inverted.dataset.driftedFeatures.includes('input.mean'), 'the mean pixel value is named');

  // The latest report is also on the device's own API.
  const local = await (await fetch(`${url}/v1/drift`)).json() as { models: Record<string, DriftReport> };
  t.equal(local.models.digits.window.seq, 2);

  // The controller's view: publish the package there so the fleet verdict has its reference.
  await publishPackage(c.store, pkg);
  const cli = await run(process.execPath, ['--import', 'tsx', 'controller/cli.ts', 'drift', '--db', db], { timeout: 60_000 });
  t.match(cli.stdout, /digits\s+1\.0\.0-int8\s+1\s+alert\s+alert \(200 rows/, `edge-fleet drift shows the version, its verdict and its fleet verdict:\n${cli.stdout}`);
  t.match(cli.stdout, /dev-e2e alert/, 'and the drifting device');
});

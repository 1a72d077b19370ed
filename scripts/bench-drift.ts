// What drift monitoring costs an inference: the digits int8 model on the native backend,
// batch 1, against DriftMonitor.observe() on the same inputs and outputs, side by side in one
// run (alternating rounds, so machine noise hits both). observe() time includes its share of
// window closing (report building every windowInferences observations). Budget: 5%.
//   npm run bench:drift [-- --runs 5000 --sample-every 1 --window 1000 --backend native|ort]
// (--backend ort times ONNX Runtime on the same int8 model instead: for a machine without the addon.)
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Fastify from 'fastify';
import { pino } from 'pino';
import { parseConfig } from '../agent/config/load.js';
import { DriftMonitor, buildReference, type DriftSample } from '../agent/drift/index.js';
import { prom } from '../agent/metrics.js';
import { packageRoot } from '../agent/native.js';
import * as ort from 'onnxruntime-node';
import type { Backend, TensorMap } from '../agent/runtime/backend.js';
import { NativeBackend } from '../agent/runtime/native/index.js';
import { heldOutDigits, trainingDigits, DIGIT_PIXELS } from '../tools/edge-model/digits.js';

const arg = (name: string, d: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const RUNS = arg('runs', 10_000);
const SAMPLE_EVERY = arg('sample-every', 16);
const WINDOW = arg('window', 1000);
const ROUND = 250;

const BACKEND = process.argv.includes('--backend') ? process.argv[process.argv.indexOf('--backend') + 1] : 'native';
const modelFile = path.join(packageRoot, 'models/digits-int8/model.onnx');
const backend = BACKEND === 'ort' ? await ortBackend(readFileSync(modelFile)) : NativeBackend.load(readFileSync(modelFile), { name: 'digits' });
const inName = backend.inputs[0].name, outName = backend.outputs[0].name;

async function ortBackend(bytes: Buffer): Promise<Pick<Backend, 'run' | 'dispose'> & { inputs: { name: string }[]; outputs: { name: string }[] }> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  return {
    inputs: session.inputNames.map((name) => ({ name })),
    outputs: session.outputNames.map((name) => ({ name })),
    async run(x: TensorMap): Promise<TensorMap> {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [k, t] of Object.entries(x)) feeds[k] = new ort.Tensor('float32', t.data as Float32Array, t.shape);
      const out = await session.run(feeds);
      const res: TensorMap = {};
      for (const [k, t] of Object.entries(out)) res[k] = { dtype: 'float32', shape: [...t.dims], data: t.data as Float32Array };
      return res;
    },
    dispose: () => session.release(),
  };
}
const image = (set: { images: Float32Array }, i: number): TensorMap => ({
  [inName]: { dtype: 'float32', shape: [1, 1, 28, 28], data: set.images.slice(i * DIGIT_PIXELS, (i + 1) * DIGIT_PIXELS) },
});

// The reference as `edge-model pack --calib` writes it: image summaries, predicted class, confidence.
const train = trainingDigits();
const samples: DriftSample[] = [];
for (let i = 0; i < 1000; i++) {
  const inputs = image(train, i);
  samples.push({ inputs, outputs: await backend.run(inputs) });
}
const reference = buildReference(samples, {
  inputs: [{ kind: 'image', tensor: inName, channelAxis: 1 }],
  outputs: [{ kind: 'class', tensor: outName }, { kind: 'confidence', tensor: outName, softmax: true }],
});

const config = parseConfig({ deviceId: 'bench', dataDir: '/tmp', drift: { windowInferences: WINDOW, sampleEvery: SAMPLE_EVERY } }, 'bench');
const http = Fastify();
let reports = 0;
const verdicts: Record<string, number> = {};
const monitor = new DriftMonitor({ config, log: pino({ level: 'silent' }), metrics: new prom.Registry(), http, startedAt: Date.now() }, {
  record: (stream, payload) => {
    if (stream !== 'drift') return;
    reports++;
    const v = (payload as { verdict: string }).verdict;
    verdicts[v] = (verdicts[v] ?? 0) + 1;
  },
});
await monitor.start();
monitor.attach('digits', 'bench', reference);

// The held-out digits in a fixed shuffled order (the set is sorted by digit), each one's
// outputs kept for the observe() rounds.
const test = heldOutDigits();
const order = Array.from({ length: test.count }, (_, i) => i);
for (let i = order.length - 1, s = 12345; i > 0; i--) {
  s = (s * 1103515245 + 12345) >>> 0;
  const j = s % (i + 1);
  [order[i], order[j]] = [order[j], order[i]];
}
// An odd count, so that sampling one in N does not keep picking the same few digits.
const inputs = order.slice(0, order.length - (order.length % 2 === 0 ? 1 : 0)).map((i) => image(test, i));
const outputs: TensorMap[] = [];
for (const x of inputs) outputs.push(await backend.run(x));

// Warm-up: both paths compiled by the JIT before timing (inference was warmed above), the
// window-closing code included.
for (let i = 0; i < 2000; i++) monitor.observe('digits', 'bench', inputs[i % inputs.length], outputs[i % inputs.length], { latencyMs: 0.1 });
monitor.closeWindow('digits', 'bench');
reports = 0;
for (const k of Object.keys(verdicts)) delete verdicts[k];

let inferMs = 0, observeMs = 0, n = 0;
let inferCpu = 0, observeCpu = 0;
const roundRatios: number[] = [];
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
for (let round = 0; n < RUNS; round++) {
  const at = (i: number) => (round * ROUND + i) % inputs.length;
  let c0 = cpu();
  let t0 = performance.now();
  for (let i = 0; i < ROUND; i++) await backend.run(inputs[at(i)]);
  const inf = performance.now() - t0;
  inferCpu += cpu() - c0;
  c0 = cpu();
  t0 = performance.now();
  for (let i = 0; i < ROUND; i++) monitor.observe('digits', 'bench', inputs[at(i)], outputs[at(i)], { latencyMs: 0.1 });
  const obs = performance.now() - t0;
  observeCpu += cpu() - c0;
  inferMs += inf;
  observeMs += obs;
  roundRatios.push(obs / inf);
  n += ROUND;
}
await monitor.stop();
await http.close();
await backend.dispose();

const us = (ms: number) => ((ms * 1000) / n).toFixed(2);
console.log(`digits-int8, ${BACKEND === 'ort' ? 'ONNX Runtime (1 thread)' : 'native'} backend, batch 1: ${n} inferences, ${reference.spec.features.length} drift features (${reference.spec.features.map((f) => f.name).join(', ')})`);
console.log(`inference (backend.run, async):        ${us(inferMs)} us/inference`);
console.log(`observe() (sampleEvery ${SAMPLE_EVERY}, window ${WINDOW}): ${us(observeMs)} us/inference, ${reports} reports built (verdicts ${JSON.stringify(verdicts)})`);
// On a shared machine a descheduled moment lands in one phase or the other; the median over
// rounds is robust to that, the ratio of the totals is the plain mean.
const median = roundRatios.slice().sort((a, b) => a - b)[Math.floor(roundRatios.length / 2)];
console.log(`ratio observe/inference: ${(median * 100).toFixed(2)}% median over ${roundRatios.length} rounds of ${ROUND}, ${((observeMs / inferMs) * 100).toFixed(2)}% of the totals (budget 5%)`);
// CPU time (all threads of the process: the engine's worker during inference, the main thread
// while observing) is not inflated by time the process spent descheduled on a busy machine.
console.log(`ratio of CPU time observe/inference: ${((observeCpu / inferCpu) * 100).toFixed(2)}% (${us(inferCpu)} us vs ${us(observeCpu)} us CPU per inference)`);

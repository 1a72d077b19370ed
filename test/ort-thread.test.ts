// ONNX Runtime sessions on a worker thread (agent/runtime/ort-thread.ts): the placement chosen by
// the measured warm-up cost, results equal to a session on the calling thread, concurrent runs
// each answered with their own result, the caller's tensors left intact, errors from the thread
// with ONNX Runtime's reason, a crashed thread replaced, and a clean shutdown.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { IOSpec, TensorMap } from '../agent/runtime/backend.js';
import { OrtBackend, type OrtOptions } from '../agent/runtime/ort-backend.js';
import { buildYoloLike, YOLO_LIKE_INPUT, YOLO_LIKE_OUTPUT } from '../scripts/zoo/yolo-like.js';
import { digitBatch, FP32 } from './helpers/model-packages.js';

t.setTimeout(120_000);

const digitsModel = readFileSync(path.join(FP32, 'model.onnx'));
const digitsIn: IOSpec[] = [{ name: 'input', dtype: 'float32', shape: ['N', 1, 28, 28] }];
const digitsOut: IOSpec[] = [{ name: 'logits', dtype: 'float32', shape: ['N', 10] }];
const yolo = buildYoloLike();
const yoloIn: IOSpec[] = [{ name: YOLO_LIKE_INPUT.name, dtype: 'float32', shape: [...YOLO_LIKE_INPUT.shape] }];
const yoloOut: IOSpec[] = [{ name: YOLO_LIKE_OUTPUT.name, dtype: 'float32', shape: [...YOLO_LIKE_OUTPUT.shape] }];
const opts = (offThreadAboveMs: number | undefined): OrtOptions => ({ threads: 1, graphOptimizationLevel: 'all', offThreadAboveMs, name: 'test-model' });

const digit = (k: number): TensorMap => {
  const b = digitBatch(k, 1);
  return { input: { dtype: 'float32', shape: b.shape, data: b.data } };
};
const image = (seed: number): TensorMap => {
  const data = new Float32Array(3 * 320 * 320);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761 + seed * 40503) >>> 0) % 256 / 255;
  return { images: { dtype: 'float32', shape: [...YOLO_LIKE_INPUT.shape], data } };
};
const values = (m: TensorMap, name: string): number[] => Array.from(m[name]!.data as Float32Array);

t.test('the YOLO-like detector on its thread answers as a session on the calling thread does', async (t) => {
  const here = await OrtBackend.create(yolo, yoloIn, yoloOut, opts(undefined));
  t.teardown(() => here.dispose());
  const off = await OrtBackend.create(yolo, yoloIn, yoloOut, opts(0));
  t.teardown(() => off.dispose());
  t.equal(here.placement.thread, 'main', 'without offThreadAboveMs the session stays on the calling thread');
  t.equal(off.placement.thread, 'worker', 'offThreadAboveMs 0 puts the session on a worker thread');
  t.match(off.placement.reason, /warm-up run takes [\d.]+ ms, above runtime\.offThreadAboveMs \(0 ms\)/, 'the reason quotes the measured cost and the threshold');
  t.equal(off.describe().thread, 'worker', '/v1/status shows the placement');
  const x = image(1);
  const before = values(x, 'images');
  const want = await here.run(x);
  const got = await off.run(x);
  t.same(got.output0!.shape, [...YOLO_LIKE_OUTPUT.shape], 'output shape');
  t.same(values(got, 'output0'), values(want, 'output0'), 'outputs equal those of the session on the calling thread');
  t.same(values(x, 'images'), before, "the caller's input is left intact (copied to the thread, not taken)");
});

t.test('a cheap model stays on the calling thread, and 0 moves it off', async (t) => {
  const cheap = await OrtBackend.create(digitsModel, digitsIn, digitsOut, opts(60_000));
  t.teardown(() => cheap.dispose());
  t.equal(cheap.placement.thread, 'main');
  t.match(cheap.placement.reason, /within runtime\.offThreadAboveMs \(60000 ms\)/);
  t.type(cheap.placement.runMs, 'number', 'its cost was measured');
  t.equal(cheap.thread, undefined, 'the probing thread is gone');
  t.equal(values(await cheap.run(digit(0)), 'logits').length, 10);
});

t.test('concurrent runs on one thread each get their own result', async (t) => {
  const ref = await OrtBackend.create(digitsModel, digitsIn, digitsOut, opts(undefined));
  t.teardown(() => ref.dispose());
  const off = await OrtBackend.create(digitsModel, digitsIn, digitsOut, opts(0));
  t.teardown(() => off.dispose());
  const n = 32;
  const inputs = Array.from({ length: n }, (_, i) => digit(i * 3));
  const want = await Promise.all(inputs.map(async (x) => values(await ref.run(x), 'logits').join(',')));
  t.ok(new Set(want).size > n / 2, 'the inputs give different outputs, so a mix-up would show');
  const got = await Promise.all(inputs.map(async (x) => values(await off.run(x), 'logits').join(',')));
  t.equal(got.filter((g, i) => g !== want[i]).length, 0, `all ${n} concurrent results match their own input`);
});

t.test('a bad input fails with ONNX Runtime\'s reason and the thread keeps serving', async (t) => {
  const off = await OrtBackend.create(digitsModel, digitsIn, digitsOut, opts(0));
  t.teardown(() => off.dispose());
  await t.rejects(off.run({ input: { dtype: 'float32', shape: [1, 1, 27, 28], data: new Float32Array(27 * 28) } }), {
    message: /ONNX Runtime \(on its thread\) failed to run test-model: .*(dimension|Got invalid dimensions)/i,
  });
  t.equal(values(await off.run(digit(1)), 'logits').length, 10, 'the next run is answered');
});

t.test('a crashed thread fails its run and is replaced', async (t) => {
  const off = await OrtBackend.create(yolo, yoloIn, yoloOut, opts(0));
  t.teardown(() => off.dispose());
  const thread = off.thread!;
  const first = thread.worker!;
  const running = off.run(image(2));
  await first.terminate();
  await t.rejects(running, { message: /ONNX Runtime thread of test-model stopped \(exit code 1\) during the inference; a new thread is starting/ });
  t.equal(thread.restarts, 1, 'one restart counted');
  t.match(String(off.describe().lastThreadCrash), /stopped \(exit code 1\)/, '/v1/status tells why');
  const out = await off.run(image(2));
  t.same(out.output0!.shape, [...YOLO_LIKE_OUTPUT.shape], 'the new thread answers');
  t.not(thread.worker, first, 'a different thread');
});

t.test('a model ONNX Runtime refuses fails to load with its reason, before any thread', async (t) => {
  // The session is opened and timed on the calling thread first: a model that does not load
  // never gets as far as a worker thread.
  await t.rejects(OrtBackend.create(new Uint8Array([8, 7, 18, 3, 1, 2, 3]), digitsIn, digitsOut, opts(0)), {
    message: /No graph was found in the protobuf/,
  });
});

t.test('dispose ends the thread; a run afterwards is refused', async (t) => {
  const off = await OrtBackend.create(digitsModel, digitsIn, digitsOut, opts(0));
  const worker = off.thread!.worker!;
  const exited = new Promise<number>((r) => worker.once('exit', r));
  await off.dispose();
  t.equal(await exited, 0, 'the thread exits cleanly after releasing its session');
  await t.rejects(off.run(digit(0)), { message: /shut down/ });
});

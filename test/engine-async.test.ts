// The addon's async path (Napi::AsyncWorker + Promise): many runs in flight on one engine are
// serialised on its single arena and each gets its own result; disposing while runs are in
// flight lets them finish; the event loop stays free while the worker computes.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../agent/native.js';
import { NativeBackend } from '../agent/runtime/native/index.js';
import { heldOutDigits, DIGIT_PIXELS } from '../tools/edge-model/digits.js';

const bytes = readFileSync(path.join(packageRoot, 'models/digits-int8/model.onnx'));
const digits = heldOutDigits();
const image = (k: number): Float32Array => digits.images.slice(k * DIGIT_PIXELS, (k + 1) * DIGIT_PIXELS);

t.test('concurrent worker runs on one engine each return their own result', async (t) => {
  const b = NativeBackend.load(bytes, { name: 'digits', runMode: 'worker' });
  t.teardown(() => b.dispose());
  t.equal(b.describe().runMode, 'worker');
  const n = 48;
  const images = Array.from({ length: n }, (_, i) => image(i * 7));
  const expected = images.map((x) => Array.from(b.runSync([x])[0] as Float32Array));
  const distinct = new Set(expected.map((e) => e.join(','))).size;
  t.ok(distinct > n / 2, `the ${n} inputs give ${distinct} different outputs (so a mix-up would show)`);
  const got = await Promise.all(images.map((x) => b.run({ input: { dtype: 'float32', shape: [1, 1, 28, 28], data: x } })));
  const mismatches = got.filter((g, i) => Array.from(g.logits.data as Float32Array).join(',') !== expected[i].join(',')).length;
  t.equal(mismatches, 0, `all ${n} concurrent async results equal the synchronous ones`);
});

t.test('the event loop keeps turning while worker runs are queued', async (t) => {
  const b = NativeBackend.load(bytes, { name: 'digits', runMode: 'worker' });
  t.teardown(() => b.dispose());
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  const batch = 64;
  const data = digits.images.slice(0, batch * DIGIT_PIXELS);
  const out = await b.run({ input: { dtype: 'float32', shape: [batch, 1, 28, 28], data } });
  clearInterval(timer);
  t.same(out.logits.shape, [batch, 10]);
  t.ok(ticks > 0, `timers fired ${ticks} times during a ${batch}-sample run on the worker`);
});

t.test('disposing while runs are in flight lets them finish and refuses new ones', async (t) => {
  const b = NativeBackend.load(bytes, { name: 'digits', runMode: 'worker' });
  const x = image(3);
  const want = Array.from(b.runSync([x])[0] as Float32Array);
  const inflight = Array.from({ length: 8 }, () => b.runOnWorker([x]));
  await b.dispose();
  const results = await Promise.all(inflight);
  t.ok(results.every((r) => Array.from(r[0] as Float32Array).join(',') === want.join(',')), 'in-flight runs completed with correct results');
  await t.rejects(b.run({ input: { dtype: 'float32', shape: [1, 1, 28, 28], data: x } }), { code: 'EDGE_NOT_READY' });
});

t.test("'auto' runs a model this small inline and says so", async (t) => {
  const b = NativeBackend.load(bytes, { name: 'digits', inlineBelowUs: 1e9 });
  t.teardown(() => b.dispose());
  t.equal(b.describe().runMode, 'inline');
  const slow = NativeBackend.load(bytes, { name: 'digits', inlineBelowUs: 0 });
  t.teardown(() => slow.dispose());
  t.equal(slow.describe().runMode, 'worker', 'a model slower than the threshold goes to the worker');
  const x = image(5);
  const a = await b.run({ input: { dtype: 'float32', shape: [1, 1, 28, 28], data: x } });
  const w = await slow.run({ input: { dtype: 'float32', shape: [1, 1, 28, 28], data: x } });
  t.same(Array.from(a.logits.data as Float32Array), Array.from(w.logits.data as Float32Array), 'both modes compute the same logits');
});

// The engine reads a run's inputs where the caller holds them (no copy into its arena): at any
// byte offset a Float32Array can have, on the calling thread and on the worker, it computes
// what it computes from an aligned copy, and it never writes the caller's input. An input that
// is also an output is still copied, so the output is the input.
import t from 'tap';
t.setTimeout(60_000);
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../agent/native.js';
import { decodeModel } from '../agent/onnx/model.js';
import { compileModel, createEngine } from '../agent/runtime/native/index.js';
import { heldOutDigits, DIGIT_PIXELS } from '../tools/edge-model/digits.js';

const base = compileModel(decodeModel(readFileSync(path.join(packageRoot, 'models/digits-int8/model.onnx'))), 'digits');
const digits = heldOutDigits();

t.test('inputs at any float offset give the aligned result and are left as they were', async (t) => {
  for (const threads of [1, 2]) {
    const e = createEngine(base.plan, base.weights, { threads });
    t.teardown(() => e.dispose());
    for (let k = 0; k < 6; k++) {
      const aligned = digits.images.slice(k * DIGIT_PIXELS, (k + 1) * DIGIT_PIXELS);
      const want = Array.from(e.run([aligned])[0] as Float32Array);
      // Offsets 4..24 bytes into a buffer: every 4-byte alignment short of 32 and 64.
      const buf = new ArrayBuffer((DIGIT_PIXELS + 8) * 4);
      const shifted = new Float32Array(buf, 4 * (k + 1), DIGIT_PIXELS);
      shifted.set(aligned);
      const before = new Uint8Array(buf).slice();
      const sync = Array.from(e.run([shifted])[0] as Float32Array);
      const async = Array.from((await e.runAsync([shifted]))[0] as Float32Array);
      t.same(sync, want, `${threads} thread(s), input at byte offset ${4 * (k + 1)}: the calling thread's result is the aligned one`);
      t.same(async, want, `${threads} thread(s), input at byte offset ${4 * (k + 1)}: the worker's result is the aligned one`);
      t.same(new Uint8Array(buf), before, 'the caller\'s buffer (the input and the bytes around it) is unchanged');
    }
  }
});

t.test('an input that is also an output comes back as it went in', async (t) => {
  const input = base.plan.inputs[0];
  const plan = { ...base.plan, outputs: [...base.plan.outputs, { name: 'echo', tensor: input.tensor }] };
  const e = createEngine(plan, base.weights);
  t.teardown(() => e.dispose());
  const x = digits.images.slice(3 * DIGIT_PIXELS, 4 * DIGIT_PIXELS);
  const [logits, echo] = e.run([x]);
  t.same(Array.from(echo as Float32Array), Array.from(x), 'the echoed input equals the input');
  const plain = createEngine(base.plan, base.weights);
  t.teardown(() => plain.dispose());
  t.same(Array.from(logits as Float32Array), Array.from(plain.run([x])[0] as Float32Array), 'and the model\'s own output is unchanged by it');
});

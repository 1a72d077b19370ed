// The sample int8 digits model on the native engine and on ONNX Runtime where ONNX Runtime is
// exact (test/helpers/ort-reference.ts): every logit within one quantization step, on held-out
// digits, at batch 1 and batched. Plain ONNX Runtime is held to the same bar on CPUs where it
// computes exactly; elsewhere its deviation (int16 saturation) is recorded.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ortReference, worstSteps } from './helpers/ort-reference.js';
import { decodeModel, tensorData } from '../agent/onnx/model.js';
import { packageRoot } from '../agent/native.js';
import { NativeBackend, canRunNatively } from '../agent/runtime/native/index.js';
import { heldOutDigits, DIGIT_PIXELS } from '../tools/edge-model/digits.js';

const file = path.join(packageRoot, 'models/digits-int8/model.onnx');
const bytes = readFileSync(file);
const model = decodeModel(bytes, file);

/** The scale of the DequantizeLinear that produces the graph's output: one step of the logits. */
function outputStep(): number {
  const g = model.graph!;
  const out = g.output![0].name!;
  const dq = g.node!.find((n) => n.output?.includes(out) && n.opType === 'DequantizeLinear');
  if (!dq) throw new Error('the digits model output is not a DequantizeLinear');
  const s = g.initializer!.find((i) => i.name === dq.input![1])!;
  return Number(tensorData(s)[0]);
}

t.test('the int8 digits model runs natively and agrees with ONNX Runtime', async (t) => {
  t.same(canRunNatively(model), { ok: true, unsupported: [] }, 'the whole graph is supported');
  const step = outputStep();
  const reference = await ortReference(bytes);
  const session = reference.exact;
  const native = NativeBackend.load(bytes, { name: 'digits-int8' });
  t.teardown(async () => { await native.dispose(); await reference.release(); });
  const inName = session.inputNames[0]; const outName = session.outputNames[0];
  const digits = heldOutDigits();
  const count = 200;
  let worst = 0; let agree = 0; let correct = 0; let differ = 0; let worstPlain = 0;
  for (let i = 0; i < count; i++) {
    const k = Math.floor((i * digits.count) / count); // spread over every class
    const data = digits.images.slice(k * DIGIT_PIXELS, (k + 1) * DIGIT_PIXELS);
    const shape = [1, 1, 28, 28];
    const ref = (await session.run({ [inName]: new ort.Tensor('float32', data, shape) }))[outName].data as Float32Array;
    const got = (await native.run({ [inName]: { dtype: 'float32', shape, data } }))[outName].data as Float32Array;
    const plain = (await reference.plain.run({ [inName]: new ort.Tensor('float32', data, shape) }))[outName].data as Float32Array;
    worstPlain = Math.max(worstPlain, worstSteps(plain, got, step));
    let argRef = 0; let argGot = 0;
    for (let j = 0; j < 10; j++) {
      const d = Math.abs(got[j] - ref[j]) / step;
      worst = Math.max(worst, d);
      if (d > 0.5) differ++;
      if (ref[j] > ref[argRef]) argRef = j;
      if (got[j] > got[argGot]) argGot = j;
    }
    if (argRef === argGot) agree++;
    if (argGot === digits.labels[k]) correct++;
  }
  t.ok(worst <= 1.001, `worst logit difference ${worst.toFixed(3)} steps of ${step} (at most 1); ${differ}/${count * 10} logits differ by a step`);
  t.ok(agree >= count - 2, `top-1 agrees with ONNX Runtime on ${agree}/${count} digits`);
  if (reference.plainIsExact) t.ok(worstPlain <= 1.001, `plain ONNX Runtime is exact here (${reference.why}): worst ${worstPlain.toFixed(3)} steps`);
  else t.comment(`plain ONNX Runtime saturates here (${reference.why}): worst ${worstPlain.toFixed(3)} steps from the exact result`);
  t.ok(correct / count > 0.9, `native accuracy on ${count} held-out digits: ${(100 * correct / count).toFixed(1)}%`);

  // A batch of 16 equals 16 single runs (the engine runs the batch sample by sample).
  const batch = 16;
  const data = digits.images.slice(0, batch * DIGIT_PIXELS);
  const shape = [batch, 1, 28, 28];
  const ref = (await session.run({ [inName]: new ort.Tensor('float32', data, shape) }))[outName];
  const got = (await native.run({ [inName]: { dtype: 'float32', shape, data } }))[outName];
  t.same(got.shape, [batch, 10], 'batched output shape');
  let worstBatch = 0;
  for (let i = 0; i < batch * 10; i++) worstBatch = Math.max(worstBatch, Math.abs((got.data as Float32Array)[i] - (ref.data as Float32Array)[i]) / step);
  t.ok(worstBatch <= 1.001, `batch of ${batch}: worst difference ${worstBatch.toFixed(3)} steps`);
  const d = native.describe();
  t.equal(d.backend, 'native');
  t.ok(typeof d.kernelVariant === 'string' && (d.kernelVariant as string).length > 0, `kernel variant ${d.kernelVariant}`);
  t.ok((d.arenaBytes as number) > 0, `arena ${d.arenaBytes} bytes`);
});

// `edge-model quantize --activation-bits 16` (issue 18, W8A16): weights stay int8, activations
// become uint16 through ONNX Runtime's com.microsoft QuantizeLinear/DequantizeLinear (the default
// domain takes 16 bits only from opset 21). On MobileNetV2 (scripts/zoo):
// - every activation Q/DQ of the 16-bit model is a com.microsoft node with a uint16 zero point,
//   every weight stays int8, and the model imports the com.microsoft opset;
// - ONNX Runtime runs it, closer to fp32 than the 8-bit model by a wide margin;
// - the native engine runs the com.microsoft form of an 8-bit model exactly as the
//   default-domain form (the 16-bit model on the engine: test/engine-a16.test.ts);
// - unusable combinations are refused before any work, saying what is expected.
// (PP-OCRv4 rec, which 8-bit activations cannot hold: test/quantize-ppocr-native.test.ts.)
import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType, decodeModel, encodeModel, type ModelProto } from '../agent/onnx/model.js';
import { NativeBackend } from '../agent/runtime/native/index.js';
import { writeNpy } from '../agent/tensor/npy.js';
import { quantizeFile, type QuantizeOptions } from '../tools/compress/quantize.js';
import { buildCli } from '../tools/edge-model/cli.js';
import { imageLikeInput } from '../scripts/zoo/graph.js';
import { buildMobileNetV2, MOBILENET_V2_INPUT } from '../scripts/zoo/mobilenet-v2.js';
import { scratchDir } from './helpers/edge-model-cli.js';

// Two quantizations of MobileNetV2 (4 calibration inputs), ONNX Runtime and native runs: ~20 s idle.
t.setTimeout(240_000);

const dir = scratchDir(t);
const shape = MOBILENET_V2_INPUT;
const fp32File = join(dir, 'fp32.onnx');
writeFileSync(fp32File, buildMobileNetV2());
const calib = join(dir, 'calib');
mkdirSync(calib);
for (let i = 0; i < 4; i++) writeNpy(join(calib, `s${i}.npy`), { dtype: 'float32', shape, data: imageLikeInput(shape, 1000 + i) });
const base: QuantizeOptions = { calib, perChannel: true, method: 'minmax', format: 'qdq', target: 'ort-arm' };
const r8 = await quantizeFile(fp32File, join(dir, 'a8.onnx'), base);
const r16 = await quantizeFile(fp32File, join(dir, 'a16.onnx'), { ...base, activationBits: 16 });
const a8 = readFileSync(join(dir, 'a8.onnx'));
const a16 = readFileSync(join(dir, 'a16.onnx'));
const inputs = [2000, 2001].map((seed) => imageLikeInput(shape, seed));

const QDQ = new Set(['QuantizeLinear', 'DequantizeLinear']);
/** Zero-point element type of each Q/DQ node, by domain and by what it quantizes. */
function qdqKinds(m: ModelProto): { domain: string; zp: number | undefined; x: number | undefined }[] {
  const inits = new Map((m.graph!.initializer ?? []).map((i) => [i.name!, i]));
  return m.graph!.node!.filter((n) => QDQ.has(n.opType!)).map((n) => ({
    domain: n.domain ?? '',
    zp: (n.input![2] ? inits.get(n.input![2])?.dataType : undefined) ?? undefined,
    x: inits.get(n.input![0])?.dataType ?? undefined,
  }));
}

t.test('16-bit activations are uint16 com.microsoft Q/DQ; weights stay int8', async (t) => {
  t.equal(r16.activationBits, 16, 'the report names 16-bit activations');
  t.equal(r8.activationBits, 8, 'and the default is 8');
  const m = decodeModel(a16);
  const kinds = qdqKinds(m);
  const activations = kinds.filter((k) => k.zp !== undefined && k.x !== DataType.INT8);
  t.ok(activations.length > 100, `${activations.length} activation Q/DQ nodes`);
  t.same(activations.filter((k) => k.zp !== DataType.UINT16 || k.domain !== 'com.microsoft'), [], 'each has a uint16 zero point, in com.microsoft');
  const weights = kinds.filter((k) => k.x === DataType.INT8);
  t.ok(weights.length >= 50, `${weights.length} int8 weight DequantizeLinear`);
  t.ok(weights.every((k) => k.domain === ''), 'weights dequantize in the default domain');
  t.ok(m.opsetImport!.some((o) => o.domain === 'com.microsoft'), 'the model imports com.microsoft');
  t.ok(qdqKinds(decodeModel(a8)).every((k) => k.domain === '' && k.zp !== DataType.UINT16), 'the 8-bit model has no 16-bit Q/DQ');
});

async function ortOutputs(bytes: Uint8Array): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(bytes);
  try {
    const out: Float32Array[] = [];
    for (const x of inputs) out.push((await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, shape) }))[s.outputNames[0]].data as Float32Array);
    return out;
  } finally {
    await s.release();
  }
}

function sqnr(ref: Float32Array[], q: Float32Array[]): number {
  let s = 0, e = 0;
  ref.forEach((r, j) => { for (let i = 0; i < r.length; i++) { s += r[i] * r[i]; e += (r[i] - q[j][i]) ** 2; } });
  return 10 * Math.log10(s / Math.max(e, 1e-30));
}

t.test('ONNX Runtime runs the 16-bit model, far closer to fp32 than the 8-bit one', async (t) => {
  const ref = await ortOutputs(readFileSync(fp32File));
  const q8 = sqnr(ref, await ortOutputs(a8)), q16 = sqnr(ref, await ortOutputs(a16));
  t.comment(`MobileNetV2 SQNR vs fp32 in ONNX Runtime: 8-bit activations ${q8.toFixed(1)} dB, 16-bit ${q16.toFixed(1)} dB`);
  t.ok(q16 >= q8 + 3, `16-bit ${q16.toFixed(1)} dB at least 3 dB above 8-bit ${q8.toFixed(1)} dB`);
});

t.test('com.microsoft Q/DQ with 8 bits run natively, exactly as the default domain\'s', async (t) => {
  const m = decodeModel(a8);
  for (const n of m.graph!.node!) if (QDQ.has(n.opType!) && m.graph!.initializer!.every((i) => i.name !== n.input![0])) n.domain = 'com.microsoft';
  m.opsetImport!.push({ domain: 'com.microsoft', version: 1 });
  const contrib = encodeModel(m);
  t.ok(decodeModel(contrib).graph!.node!.filter((n) => n.domain === 'com.microsoft').length > 100, 'activation Q/DQ moved to com.microsoft');
  const run = async (bytes: Uint8Array) => {
    const b = NativeBackend.load(bytes, { threads: 1, name: 'contrib' });
    try {
      return (await b.run({ [b.inputs[0].name]: { dtype: 'float32', shape, data: inputs[0] } }))[b.outputs[0].name].data as Float32Array;
    } finally {
      await b.dispose();
    }
  };
  const [want, got] = [await run(a8), await run(contrib)];
  t.ok(want.length === got.length && want.every((v, i) => v === got[i]), 'bit-identical outputs');
});

t.test('combinations that cannot work are refused before any work, saying what is expected', async (t) => {
  const out = join(dir, 'never.onnx');
  const cases: [Partial<QuantizeOptions>, RegExp][] = [
    [{ activationBits: 12 as 16 }, /--activation-bits must be 8 or 16 \(got 12\)/],
    [{ activationBits: 16, format: 'qoperator' }, /16-bit activations are written as QuantizeLinear\/DequantizeLinear only \(--format qdq\)/],
    [{ activationBits: 16, dynamic: true, calib: undefined }, /--activation-bits 16 is for static quantization/],
    [{ rangeHeadroom: 0.5 }, /--range-headroom must be a number from 1 to 64 \(got 0.5\)/],
  ];
  for (const [opts, message] of cases) {
    await t.rejects(quantizeFile(fp32File, out, { ...base, ...opts }), { code: 'EDGE_USAGE', message }, JSON.stringify(opts));
  }
  const q = buildCli().commands.find((c) => c.name() === 'quantize')!;
  const help = q.helpInformation().replace(/\s+/g, ' ');
  t.match(help, /--activation-bits <bits>.*W8A16/, 'quantize --help says what --activation-bits is for');
  t.match(help, /--range-headroom <factor>/);
});

// The native engine on 16-bit activations (W8A16, native/src/engine/steps_a16.cc): int8
// weights, uint16 activations through com.microsoft QuantizeLinear/DequantizeLinear.
// - A convolution (3x3, strided, depthwise 3x3 and 5x5, pointwise, with and without a fused
//   Relu) and a Gemm give exactly the exact integer result: sum over (x - zp_x) * w in integers
//   plus the bias, times the float32 multiplier in double, rounded half to even, clamped; on
//   every kernel variant this CPU has, with zero points whose two bytes are both non-zero.
// - A 16-bit Add and GlobalAveragePool give what their definitions give.
// - A W8A16 MobileNetV2 (scripts/zoo) runs natively, within rounding of ONNX Runtime's W8A16,
//   and much closer to fp32 than the 8-bit model.
// - An op the engine does not compute on 16 bits yet is refused by name.
import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { kernelsInfo, setKernelVariant } from '../agent/kernels/index.js';
import { makeNode } from '../agent/onnx/model.js';
import { NativeBackend } from '../agent/runtime/native/index.js';
import { requantMultipliers, roundHalfEven } from '../agent/runtime/native/quant.js';
import { writeNpy } from '../agent/tensor/npy.js';
import { quantizeFile } from '../tools/compress/quantize.js';
import { imageLikeInput } from '../scripts/zoo/graph.js';
import { buildMobileNetV2, MOBILENET_V2_INPUT } from '../scripts/zoo/mobilenet-v2.js';
import { A16Graph as Graph } from './helpers/a16-graphs.js';
import { rng } from './helpers/engine-graphs.js';
import { scratchDir } from './helpers/edge-model-cli.js';

// Small graphs on every variant, then two quantizations of MobileNetV2: ~30 s idle.
t.setTimeout(300_000);

const f32 = Math.fround;

interface ConvCase { name: string; C: number; M: number; H: number; W: number; k: number; stride: number; pad: number; group: number; relu: boolean; gemm?: boolean }
const convCases: ConvCase[] = [
  { name: '3x3 pad 1', C: 8, M: 16, H: 9, W: 11, k: 3, stride: 1, pad: 1, group: 1, relu: false },
  { name: '3x3 stride 2, Relu', C: 16, M: 24, H: 12, W: 10, k: 3, stride: 2, pad: 1, group: 1, relu: true },
  { name: 'depthwise 3x3', C: 32, M: 32, H: 10, W: 14, k: 3, stride: 1, pad: 1, group: 32, relu: false },
  { name: 'depthwise 5x5 (row kernel: 8+ inside pixels)', C: 24, M: 24, H: 8, W: 20, k: 5, stride: 1, pad: 2, group: 24, relu: true },
  { name: 'pointwise 1x1', C: 40, M: 24, H: 7, W: 9, k: 1, stride: 1, pad: 0, group: 1, relu: false },
  { name: 'Gemm after Flatten', C: 48, M: 20, H: 1, W: 1, k: 1, stride: 1, pad: 0, group: 1, relu: false, gemm: true },
];
const zeroPoints: [number, number][] = [[0x7f81, 0x80ff], [0, 1234], [65535, 40000]];

/** The model, its input, and the exact u16 outputs the engine must give. */
function convCase(c: ConvCase, zx: number, zy: number, seed: number): { bytes: Uint8Array; x: Float32Array; want: Uint16Array; sy: number; zy: number; outShape: number[] } {
  const rand = rng(seed);
  const cg = c.C / c.group;
  const taps = cg * c.k * c.k;
  const w = Int8Array.from({ length: c.M * taps }, () => Math.floor(rand() * 255) - 127);
  const ws = Float32Array.from({ length: c.M }, () => 0.002 + rand() * 0.01);
  const sx = 1 / 4096;
  const xq = Uint16Array.from({ length: c.C * c.H * c.W }, (_, i) => (i % 17 === 0 ? 0 : i % 19 === 0 ? 65535 : Math.floor(rand() * 65536))); // NCHW
  const x = Float32Array.from(xq, (q) => f32((q - zx) * sx));
  const accScales = Float32Array.from(ws, (s) => f32(sx * s));
  const b = Int32Array.from({ length: c.M }, () => Math.floor((rand() - 0.5) * 2e6));
  const Ho = Math.floor((c.H + 2 * c.pad - c.k) / c.stride) + 1;
  const Wo = Math.floor((c.W + 2 * c.pad - c.k) / c.stride) + 1;
  // Exact sums, NCHW.
  const acc = new Float64Array(c.M * Ho * Wo);
  for (let m = 0; m < c.M; m++) {
    const g = Math.floor(m / (c.M / c.group));
    for (let oh = 0; oh < Ho; oh++) for (let ow = 0; ow < Wo; ow++) {
      let s = b[m];
      for (let ci = 0; ci < cg; ci++) for (let ky = 0; ky < c.k; ky++) for (let kx = 0; kx < c.k; kx++) {
        const ih = oh * c.stride - c.pad + ky; const iw = ow * c.stride - c.pad + kx;
        if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
        s += (xq[((g * cg + ci) * c.H + ih) * c.W + iw] - zx) * w[((m * cg + ci) * c.k + ky) * c.k + kx];
      }
      acc[(m * Ho + oh) * Wo + ow] = s;
    }
  }
  let spread = 0;
  for (const v of acc) spread = Math.max(spread, Math.abs(v));
  // An output scale that puts the largest sums a little beyond the range (some saturate).
  const sy = f32((spread * sx * ws[0]) / 30000);
  const mult = requantMultipliers(sx, Array.from(ws), sy, c.M);
  const lo = c.relu ? zy : 0;
  const plane = Ho * Wo;
  const want = Uint16Array.from(acc, (a, i) => {
    const v = a * mult[Math.floor(i / plane)] + zy;
    return Math.max(lo, Math.min(65535, roundHalfEven(v)));
  });

  const g = new Graph();
  let xin = g.qdq('x', sx, zx);
  const inShape = [1, c.C, c.H, c.W];
  const y = g.name('y');
  if (c.gemm) {
    const flat = g.name('flat');
    g.nodes.push(makeNode('Flatten', [xin], [flat], { axis: 1 }));
    xin = flat;
    g.nodes.push(makeNode('Gemm', [xin, g.weights(w, [c.M, c.C], ws), g.bias(b, accScales)], [y], { transB: 1 }));
  } else {
    g.nodes.push(makeNode('Conv', [xin, g.weights(w, [c.M, cg, c.k, c.k], ws), g.bias(b, accScales)], [y],
      { kernel_shape: [c.k, c.k], strides: [c.stride, c.stride], pads: [c.pad, c.pad, c.pad, c.pad], group: c.group }));
  }
  let out = y;
  if (c.relu) {
    out = g.name('relu');
    g.nodes.push(makeNode('Relu', [y], [out]));
  }
  const outShape = c.gemm ? [1, c.M] : [1, c.M, Ho, Wo];
  const final = g.qdq(out, sy, zy);
  return { bytes: g.model(inShape, final, outShape), x, want, sy, zy, outShape };
}

async function runNative(bytes: Uint8Array, x: Float32Array, shape: number[], threads = 1): Promise<Float32Array> {
  const b = NativeBackend.load(bytes, { threads, name: 'a16' });
  try {
    return Float32Array.from((await b.run({ [b.inputs[0].name]: { dtype: 'float32', shape, data: x } }))[b.outputs[0].name].data as Float32Array);
  } finally {
    await b.dispose();
  }
}

const kernels = kernelsInfo();
t.test('16-bit convolutions and Gemm are exact on every kernel variant', async (t) => {
  const before = kernels.variant;
  t.teardown(() => setKernelVariant(before));
  let seed = 1;
  for (const variant of kernels.supported) {
    setKernelVariant(variant);
    for (const c of convCases) {
      for (const [zx, zy] of zeroPoints) {
        const k = convCase(c, zx, zy, seed++);
        const got = await runNative(k.bytes, k.x, [1, c.C, c.H, c.W], seed % 2 ? 1 : 2);
        const q = Uint16Array.from(got, (v) => Math.round(v / k.sy + k.zy));
        let wrong = 0; let first = -1;
        for (let i = 0; i < q.length; i++) if (q[i] !== k.want[i]) { wrong++; if (first < 0) first = i; }
        const saturated = k.want.filter((v) => v === 65535 || v === 0 || v === k.zy).length;
        t.equal(wrong, 0, `${variant}, ${c.name}, zero points ${zx}/${zy}: ${q.length} outputs exact (${saturated} at a clamp)${first >= 0 ? `; first wrong at ${first}: ${q[first]} vs ${k.want[first]}` : ''}`);
      }
    }
  }
});

t.test('a 16-bit Add and GlobalAveragePool compute their definitions', async (t) => {
  const rand = rng(77);
  const C = 12, H = 6, W = 5;
  const sa = 1 / 3000, sb = 1 / 5000, sy = 1 / 2500, sp = 1 / 4000;
  const za = 30000, zb = 0x1234, zy = 33000, zp = 32000;
  const aq = Uint16Array.from({ length: C * H * W }, () => Math.floor(rand() * 65536));
  const bq = Uint16Array.from({ length: C * H * W }, () => Math.floor(rand() * 65536));
  const g = new Graph();
  // Two inputs would need two quantized graph inputs; b is a 1x1 conv-free copy of x instead:
  // x -> Q/DQ (a) and x * 1 through a second Q/DQ at b's parameters.
  const a = g.qdq('x', sa, za);
  const x2 = g.name('x2');
  g.nodes.push(makeNode('Identity', ['x'], [x2]));
  const bb = g.qdq(x2, sb, zb);
  const sum = g.name('sum');
  g.nodes.push(makeNode('Add', [a, bb], [sum]));
  const s = g.qdq(sum, sy, zy);
  const pooled = g.name('gap');
  g.nodes.push(makeNode('GlobalAveragePool', [s], [pooled]));
  const out = g.qdq(pooled, sp, zp);
  const bytes = g.model([1, C, H, W], out, [1, C, 1, 1]);
  void bq;
  const x = Float32Array.from(aq, (q) => f32((q - za) * sa));
  // The definition: Q(DQ(a) + DQ(b)) in float32, then the exact mean of the sum's u16 values.
  const quant = (v: number, scale: number, z: number) => Math.max(0, Math.min(65535, roundHalfEven(f32(v / scale)) + z));
  const qa = Array.from(x, (v) => quant(v, sa, za));
  const qb = Array.from(x, (v) => quant(v, sb, zb));
  const qs = qa.map((v, i) => quant(f32(f32((v - za) * sa) + f32((qb[i] - zb) * sb)), sy, zy));
  const want = Array.from({ length: C }, (_, c) => {
    let total = 0;
    for (let i = 0; i < H * W; i++) total += qs[c * H * W + i] - zy;
    return Math.max(0, Math.min(65535, roundHalfEven(total * (f32(sy) / (H * W * f32(sp))) + zp)));
  });
  const got = await runNative(bytes, x, [1, C, H, W]);
  const q = Array.from(got, (v) => Math.round(v / f32(sp) + zp));
  t.same(q, want, `${C} pooled sums of ${H * W} 16-bit adds each`);
});

t.test('a W8A16 MobileNetV2 runs natively, within rounding of ONNX Runtime, far closer to fp32 than 8 bits', async (t) => {
  const dir = scratchDir(t);
  const shape = MOBILENET_V2_INPUT;
  writeFileSync(join(dir, 'fp32.onnx'), buildMobileNetV2());
  mkdirSync(join(dir, 'calib'));
  for (let i = 0; i < 4; i++) writeNpy(join(dir, 'calib', `s${i}.npy`), { dtype: 'float32', shape, data: imageLikeInput(shape, 1000 + i) });
  const opts = { calib: join(dir, 'calib'), perChannel: true, method: 'minmax' as const, format: 'qdq' as const };
  const r16 = await quantizeFile(join(dir, 'fp32.onnx'), join(dir, 'a16.onnx'), { ...opts, activationBits: 16, target: 'native' });
  t.match(r16.target.why, /int8 weights/, 'quantized for the native engine (int8 weights)');
  await quantizeFile(join(dir, 'fp32.onnx'), join(dir, 'a8.onnx'), { ...opts, target: 'native' });
  const fp32 = await ort.InferenceSession.create(join(dir, 'fp32.onnx'));
  const ort16 = await ort.InferenceSession.create(join(dir, 'a16.onnx'));
  t.teardown(async () => { await fp32.release(); await ort16.release(); });
  const sqnr = (ref: Float32Array, q: Float32Array) => {
    let s = 0, e = 0;
    for (let i = 0; i < ref.length; i++) { s += ref[i] ** 2; e += (ref[i] - q[i]) ** 2; }
    return 10 * Math.log10(s / Math.max(e, 1e-30));
  };
  const x = imageLikeInput(shape, 2000);
  const feeds = { [fp32.inputNames[0]]: new ort.Tensor('float32', x, shape) };
  const ref = (await fp32.run(feeds))[fp32.outputNames[0]].data as Float32Array;
  const viaOrt = (await ort16.run(feeds))[ort16.outputNames[0]].data as Float32Array;
  const native16 = await runNative(readFileSync(join(dir, 'a16.onnx')), x, shape);
  const native16x2 = await runNative(readFileSync(join(dir, 'a16.onnx')), x, shape, 2);
  const native8 = await runNative(readFileSync(join(dir, 'a8.onnx')), x, shape);
  const [vsOrt, vs32, vs32of8] = [sqnr(viaOrt, native16), sqnr(ref, native16), sqnr(ref, native8)];
  t.comment(`MobileNetV2: native W8A16 vs ONNX Runtime W8A16 ${vsOrt.toFixed(1)} dB; vs fp32: W8A16 ${vs32.toFixed(1)} dB, int8 ${vs32of8.toFixed(1)} dB`);
  t.ok(vsOrt >= 60, `native and ONNX Runtime agree to ${vsOrt.toFixed(1)} dB (they differ only in rounding: exact integer sums against float ones)`);
  t.ok(vs32 >= vs32of8 + 5, `W8A16 ${vs32.toFixed(1)} dB at least 5 dB above int8 ${vs32of8.toFixed(1)} dB against fp32`);
  t.ok(native16.every((v, i) => v === native16x2[i]), 'two threads give the same bits as one');
});

t.test('an op without a 16-bit path is refused by name', async (t) => {
  const g = new Graph();
  const a = g.qdq('x', 1 / 1000, 30000);
  const h = g.name('hs');
  g.nodes.push(makeNode('HardSwish', [a], [h]));
  const out = g.qdq(h, 1 / 1000, 30000);
  const bytes = g.model([1, 4, 3, 3], out, [1, 4, 3, 3]);
  t.throws(() => NativeBackend.load(bytes, { name: 'a16-hardswish' }),
    { message: /HardSwish.*16-bit activations \(W8A16\) are not computed by the native engine for this op yet/ });
});

// The kernels against ONNX Runtime on single-operator models built here: QLinearMatMul,
// MatMulInteger, QLinearConv, QuantizeLinear, DequantizeLinear. Outputs must be equal, or
// within 1 where ONNX Runtime rounds through float. Data stays clear of 16-bit saturation
// (|b| <= 64, so 2 * 255 * 64 < 32768) because ONNX Runtime's AVX2 u8 x s8 path saturates;
// on adversarial data the kernels must still equal the exact sum computed here in JS.
import t from 'tap';
import * as ort from 'onnxruntime-node';
import { conv, dequantizeLinear, gemm, packConv, packGemm, quantizeLinear, kernelsInfo } from '../agent/kernels/index.js';
import {
  matMulIntegerModel, nchwToNhwc, nhwcToNchw, qlinearConvModel, qlinearMatMulModel, quantizeModel,
} from '../agent/kernels/reference-models.js';

let seed = Number(process.env.EDGE_TEST_SEED ?? Date.now() % 1_000_000_007);
t.comment(`seed=${seed} variant=${kernelsInfo().variant}`);
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const randInt = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const fill = <A extends Uint8Array | Int8Array>(a: A, lo: number, hi: number): A => {
  for (let i = 0; i < a.length; i++) a[i] = randInt(lo, hi);
  return a;
};

const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
async function runOrt(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<ort.Tensor> {
  const s = await ort.InferenceSession.create(model, opts);
  try {
    return (await s.run(feeds)).y;
  } finally {
    await s.release();
  }
}

function compare(t: Tap, what: string, ours: ArrayLike<number>, theirs: ArrayLike<number>, tolerance: number) {
  t.equal(ours.length, theirs.length, `${what}: same length`);
  let worst = 0, diffs = 0;
  for (let i = 0; i < ours.length; i++) {
    const d = Math.abs(ours[i] - theirs[i]);
    if (d > 0) diffs++;
    worst = Math.max(worst, d);
  }
  t.ok(worst <= tolerance, `${what}: max difference ${worst} <= ${tolerance} (${diffs} of ${ours.length} differ)`);
}
type Tap = Pick<typeof t, 'equal' | 'ok'>;

const f32 = Math.fround;

t.test('QLinearMatMul: uint8 x int8 and int8 x int8 equal ONNX Runtime', async (t) => {
  const shapes: [number, number, number][] = [[1, 64, 64], [1, 95, 33], [7, 33, 19], [16, 27, 10], [43, 500, 401], [64, 128, 96]];
  for (const [M, K, N] of shapes) {
    for (const aInt8 of [false, true]) {
      const zps = aInt8 ? [-128, -10, 0, 100, 127] : [0, 18, 75, 128, 157, 231, 255];
      const aZeroPoint = zps[randInt(0, zps.length - 1)], yZeroPoint = zps[randInt(0, zps.length - 1)];
      const a = aInt8 ? fill(new Int8Array(M * K), -128, 127) : fill(new Uint8Array(M * K), 0, 255);
      const b = fill(new Int8Array(K * N), -64, 63);
      const aScale = 0.02 + rand() * 0.05, bScale = 0.001 + rand() * 0.01, yScale = 0.05 + rand() * 0.5;
      const bZeroPoint = randInt(-3, 3);
      const model = qlinearMatMulModel({ M, K, N, aInt8, aScale, aZeroPoint, b, bScale, bZeroPoint, yScale, yZeroPoint });
      const y = await runOrt(model, { a: new ort.Tensor(aInt8 ? 'int8' : 'uint8', a, [M, K]) });
      const packed = packGemm({ weights: b, K, N, zeroPoints: bZeroPoint });
      const ours = gemm(packed, {
        a, M, aZeroPoint, outType: aInt8 ? 'int8' : 'uint8', outZeroPoint: yZeroPoint,
        multipliers: f32(f32(f32(aScale) * f32(bScale)) / f32(yScale)),
      });
      compare(t, `QLinearMatMul ${aInt8 ? 's8' : 'u8'} M=${M} K=${K} N=${N} a_zp=${aZeroPoint}`, ours, y.data as ArrayLike<number>, 1);
    }
  }
});

t.test('MatMulInteger: exact int32 sums equal ONNX Runtime', async (t) => {
  for (const [M, K, N] of [[1, 1, 1], [3, 7, 5], [1, 1024, 64], [43, 500, 401]] as [number, number, number][]) {
    const aZeroPoint = [0, 128, 255][randInt(0, 2)], bZeroPoint = randInt(-5, 5);
    const a = fill(new Uint8Array(M * K), 0, 255), b = fill(new Int8Array(K * N), -64, 63);
    const y = await runOrt(matMulIntegerModel(M, K, N, b, aZeroPoint, bZeroPoint), { a: new ort.Tensor('uint8', a, [M, K]) });
    const ours = gemm(packGemm({ weights: b, K, N, zeroPoints: bZeroPoint }), { a, M, aZeroPoint, outType: 'int32' });
    t.same(Array.from(ours), Array.from(y.data as Int32Array), `MatMulInteger M=${M} K=${K} N=${N} exact`);
  }
});

t.test('saturating data: the kernels stay exact where vpmaddubsw would saturate', async (t) => {
  // Every pair of products is 255 * -128 (and alternating extremes): 16-bit intermediate sums overflow.
  const M = 4, K = 256, N = 32;
  const a = new Uint8Array(M * K).fill(255);
  const b = new Int8Array(K * N).map((_, i) => (i % 3 === 0 ? 127 : -128));
  const exact = new Int32Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += a[m * K + k] * b[k * N + n];
    exact[m * N + n] = s;
  }
  for (const variant of kernelsInfo().supported) {
    const { setKernelVariant } = await import('../agent/kernels/index.js');
    setKernelVariant(variant);
    const ours = gemm(packGemm({ weights: b, K, N }), { a, M, outType: 'int32' });
    t.same(Array.from(ours), Array.from(exact), `${variant}: exact sums on 255 x -128 data`);
  }
  const { setKernelVariant } = await import('../agent/kernels/index.js');
  setKernelVariant(kernelsInfo().supported.at(-1)!);
  const y = await runOrt(matMulIntegerModel(M, K, N, b, 0, 0), { a: new ort.Tensor('uint8', a, [M, K]) });
  const theirs = y.data as Int32Array;
  const off = theirs.filter((v, i) => v !== exact[i]).length;
  t.comment(`ONNX Runtime MatMulInteger on the same data: ${off} of ${exact.length} outputs differ from the exact sum` +
    ` (its AVX2 u8s8 path saturates; on a VNNI machine it may be exact)`);
});

t.test('QLinearConv: regular, strided, dilated, grouped, depthwise and pointwise equal ONNX Runtime', async (t) => {
  const cases = [
    { C: 3, H: 17, W: 17, OC: 16, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], groups: 1 },
    { C: 8, H: 9, W: 11, OC: 12, kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], groups: 1 },
    { C: 6, H: 10, W: 10, OC: 9, kernel: [3, 2], strides: [1, 2], pads: [2, 0, 1, 1], dilations: [2, 1], groups: 3 },
    { C: 32, H: 14, W: 14, OC: 32, kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], groups: 32 },
    { C: 24, H: 8, W: 8, OC: 24, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], groups: 24 },
    { C: 40, H: 7, W: 7, OC: 24, kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], groups: 1 },
  ] as const;
  for (const c of cases) {
    const x = fill(new Uint8Array(c.C * c.H * c.W), 0, 255);
    const w = fill(new Int8Array(c.OC * (c.C / c.groups) * c.kernel[0] * c.kernel[1]), -64, 63);
    const perChannel = randInt(0, 1) === 1;
    const wScales = Float32Array.from({ length: perChannel ? c.OC : 1 }, () => 0.002 + rand() * 0.01);
    const bias = Int32Array.from({ length: c.OC }, () => randInt(-2000, 2000));
    const xScale = 0.03, xZeroPoint = [0, 128, 255][randInt(0, 2)], yScale = 0.2 + rand(), yZeroPoint = randInt(0, 255);
    const g = { ...c, kernel: [...c.kernel] as [number, number], strides: [...c.strides] as [number, number],
      pads: [...c.pads] as [number, number, number, number], dilations: [...c.dilations] as [number, number] };
    const y = await runOrt(qlinearConvModel({ ...g, xScale, xZeroPoint, w, wScales, wZeroPoint: 0, yScale, yZeroPoint, bias }),
      { x: new ort.Tensor('uint8', x, [1, c.C, c.H, c.W]) });
    const [, OC, OH, OW] = y.dims as number[];
    const pc = packConv({ H: c.H, W: c.W, C: c.C, outChannels: c.OC, kernel: g.kernel, strides: g.strides, pads: g.pads, dilations: g.dilations, groups: c.groups }, w);
    const ours = conv(pc, {
      x: nchwToNhwc(x, c.C, c.H, c.W), xZeroPoint, bias, outZeroPoint: yZeroPoint,
      multipliers: Array.from(wScales, (s) => f32(f32(f32(xScale) * s) / f32(yScale))),
    }) as Uint8Array;
    compare(t, `QLinearConv C=${c.C} ${c.H}x${c.W} OC=${c.OC} k=${c.kernel} s=${c.strides} d=${c.dilations} g=${c.groups} pc=${perChannel}`,
      nhwcToNchw(ours, OC, OH, OW), y.data as Uint8Array, 1);
  }
});

t.test('QuantizeLinear and DequantizeLinear equal ONNX Runtime bit for bit', async (t) => {
  const shape = [2, 5, 3, 7];
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n).map(() => (rand() - 0.5) * 40);
  for (let i = 0; i < 20; i++) x[i] = (randInt(-100, 100) + 0.5) * 0.25; // exact halfway points
  for (const int8 of [false, true]) {
    for (const axis of [-1, 1]) {
      const channels = axis === 1 ? 5 : 0;
      const scales = channels ? Float32Array.from({ length: channels }, () => 0.05 + rand() * 0.3) : new Float32Array([0.25]);
      const zps = int8 ? Int8Array.from({ length: scales.length }, () => randInt(-20, 20)) : Uint8Array.from({ length: scales.length }, () => randInt(100, 150));
      const q = await runOrt(quantizeModel('QuantizeLinear', shape, scales, zps, axis), { x: new ort.Tensor('float32', x, shape) });
      const ours = quantizeLinear(x, { scale: scales, zeroPoint: Array.from(zps), shape, axis: 1 }, int8 ? 'int8' : 'uint8');
      t.same(Array.from(ours), Array.from(q.data as Uint8Array), `QuantizeLinear ${int8 ? 'int8' : 'uint8'} ${channels ? 'per-channel' : 'per-tensor'}`);
      const d = await runOrt(quantizeModel('DequantizeLinear', shape, scales, zps, axis), { x: new ort.Tensor(int8 ? 'int8' : 'uint8', ours, shape) });
      const back = dequantizeLinear(ours, { scale: scales, zeroPoint: Array.from(zps), shape, axis: 1 });
      t.same(Array.from(back), Array.from(d.data as Float32Array), `DequantizeLinear ${int8 ? 'int8' : 'uint8'} ${channels ? 'per-channel' : 'per-tensor'}`);
    }
  }
});

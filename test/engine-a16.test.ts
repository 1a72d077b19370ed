// The native engine on 16-bit activations (W8A16, native/src/engine/steps_a16.cc): int8
// weights, uint16 activations through com.microsoft QuantizeLinear/DequantizeLinear.
// - A convolution (3x3, strided, depthwise 3x3 and 5x5, pointwise, with and without a fused
//   Relu) and a Gemm give exactly the exact integer result: sum over (x - zp_x) * w in integers
//   plus the bias, times the float32 multiplier in double, rounded half to even, clamped; on
//   every kernel variant this CPU has, with zero points whose two bytes are both non-zero.
// - 16-bit Add and Mul (same shape, per channel), unary functions and scalar arithmetic (65536-
//   entry tables) and GlobalAveragePool give what their definitions give.
// - A W8A16 MobileNetV2 (scripts/zoo) runs natively, within rounding of ONNX Runtime's W8A16,
//   and much closer to fp32 than the 8-bit model.
// - Softmax, LayerNorm, the MatMul of two activations, pooling, ConvTranspose, Resize, Sub
//   and the moves are within one output step of a float64 reference.
// - An op the engine does not compute on 16 bits yet is refused by name.
import t, { type Test } from 'tap';
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

t.test('16-bit element-wise ops, tables and pooling compute their definitions', async (t) => {
  // x -> HardSwish (h) -> GlobalAveragePool (g) -> HardSigmoid (s) -> h * s per channel (an SE
  // gate) -> * 0.5 (a scalar: a table) -> + h (two maps), each result quantized to uint16.
  const C = 12, H = 6, W = 5, HW = H * W;
  const P = {
    x: [1 / 3000, 30000], h: [1 / 5000, 0x1234], g: [1 / 6000, 2000], s: [1 / 60000, 0], m: [1 / 7000, 0x7f81], k: [1 / 9000, 0x7f81], y: [1 / 4000, 0x3000],
  } as const;
  const g = new Graph();
  const node = (op: string, inputs: string[], attrs: Record<string, number> = {}) => {
    const out = g.name(op);
    g.nodes.push(makeNode(op, inputs, [out], attrs));
    return out;
  };
  const x = g.qdq('x', ...P.x);
  const h = g.qdq(node('HardSwish', [x]), ...P.h);
  const gp = g.qdq(node('GlobalAveragePool', [h]), ...P.g);
  const sg = g.qdq(node('HardSigmoid', [gp], { alpha: 0.2, beta: 0.5 }), ...P.s);
  const m = g.qdq(node('Mul', [h, sg]), ...P.m);
  const k = g.qdq(node('Mul', [m, g.init(new Float32Array([0.5]), [])]), ...P.k);
  const y = g.qdq(node('Add', [k, h]), ...P.y);
  const bytes = g.model([1, C, H, W], y, [1, C, H, W]);

  // The definitions, in float32 where ONNX Runtime computes in float32 (NCHW order).
  const quant = (v: number, [s, z]: readonly [number, number]) => Math.max(0, Math.min(65535, roundHalfEven(f32(v / f32(s))) + z));
  const deq = (q: number, [s, z]: readonly [number, number]) => f32((q - z) * f32(s));
  const rand = rng(77);
  const xq = Array.from({ length: C * HW }, () => Math.floor(rand() * 65536));
  const input = Float32Array.from(xq, (q) => deq(q, P.x));
  const hs = (v: number) => f32(v * Math.max(0, Math.min(1, v / 6 + 0.5)));
  const qh = xq.map((q) => quant(hs(deq(q, P.x)), P.h));
  const qg = Array.from({ length: C }, (_, c) => {
    let total = 0;
    for (let i = 0; i < HW; i++) total += qh[c * HW + i] - P.h[1];
    return Math.max(0, Math.min(65535, roundHalfEven(total * (f32(P.h[0]) / (HW * f32(P.g[0]))) + P.g[1])));
  });
  const qs = qg.map((q) => quant(f32(Math.max(0, Math.min(1, 0.2 * deq(q, P.g) + 0.5))), P.s));
  const qm = qh.map((q, i) => quant(f32(deq(q, P.h) * deq(qs[Math.floor(i / HW)], P.s)), P.m));
  const qk = qm.map((q) => quant(f32(deq(q, P.m) * 0.5), P.k));
  const want = qk.map((q, i) => quant(f32(deq(q, P.k) + deq(qh[i], P.h)), P.y));

  const got = await runNative(bytes, input, [1, C, H, W]);
  const q = Array.from(got, (v) => Math.round(v / f32(P.y[0]) + P.y[1]));
  const wrong = q.filter((v, i) => v !== want[i]).length;
  t.equal(wrong, 0, `${q.length} outputs of HardSwish, GlobalAveragePool, HardSigmoid, a per-channel Mul, a scalar Mul and an Add: all as defined`);
  t.ok(new Set(want).size > 100, `${new Set(want).size} distinct output values (not saturated)`);
});

/**
 * One op on a 16-bit input x (shape `shape`, values on the grid of (sx, zx)) whose float64
 * result, quantized at (sy, zy), the engine must give within one step.
 */
async function withinOneStep(
  t: Test, what: string, shape: number[], build: (g: Graph, x: string) => string, outShape: number[],
  ref: (x: Float64Array) => ArrayLike<number>, seed: number,
): Promise<void> {
  const rand = rng(seed);
  const [sx, zx, sy, zy] = [1 / 2048, 30000, 1 / 4096, 20000];
  const xq = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 20000 + Math.floor(rand() * 20000));
  const g = new Graph();
  const out = g.qdq(build(g, g.qdq('x', sx, zx)), sy, zy);
  const got = await runNative(g.model(shape, out, outShape), Float32Array.from(xq, (q) => f32((q - zx) * sx)), shape);
  const want = Array.from(ref(Float64Array.from(xq, (q) => (q - zx) * f32(sx))), (v) => Math.max(0, Math.min(65535, roundHalfEven(v / f32(sy) + zy))));
  const q = Array.from(got, (v) => Math.round(v / f32(sy) + zy));
  const off = q.map((v, i) => Math.abs(v - want[i]));
  t.equal(q.length, want.length, `${what}: ${want.length} outputs`);
  t.ok(off.every((d) => d <= 1), `${what}: every output within one step of float64 (${off.filter((d) => d === 0).length} exact, largest difference ${Math.max(...off)})`);
  t.ok(new Set(want).size >= want.length / 4, `${what}: ${new Set(want).size} distinct values (not saturated)`);
}

t.test('16-bit Softmax, LayerNorm, MatMul of two activations, pooling, ConvTranspose, Resize and moves are within one step of float64', async (t) => {
  const T = 6, D = 8;
  const node = (g: Graph, op: string, inputs: string[], attrs: Record<string, unknown> = {}) => {
    const out = g.name(op);
    g.nodes.push(makeNode(op, inputs, [out], attrs as Record<string, number>));
    return out;
  };
  const rows = (x: Float64Array, fn: (r: Float64Array) => Float64Array) => {
    const out = new Float64Array(x.length);
    for (let r = 0; r < x.length / D; r++) out.set(fn(x.subarray(r * D, (r + 1) * D)), r * D);
    return out;
  };
  await withinOneStep(t, 'Softmax over the last axis', [1, T, D], (g, x) => node(g, 'Softmax', [x], { axis: -1 }), [1, T, D],
    (x) => rows(x, (r) => { const m = Math.max(...r); const e = r.map((v) => Math.exp(v - m)); const s = e.reduce((a, b) => a + b, 0); return e.map((v) => v / s); }), 1);
  const gamma = Float32Array.from({ length: D }, (_, i) => 0.5 + i / 8);
  const beta = Float32Array.from({ length: D }, (_, i) => (i - 4) / 16);
  await withinOneStep(t, 'LayerNorm spelled out (ReduceMean, Sub, Pow, Sqrt, Div, Mul, Add)', [1, T, D], (g, x) => {
    const mean = node(g, 'ReduceMean', [x], { axes: [-1], keepdims: 1 });
    const d = node(g, 'Sub', [x, mean]);
    const sq = node(g, 'Pow', [d, g.init(new Float32Array([2]), [])]);
    const v = node(g, 'ReduceMean', [sq], { axes: [-1], keepdims: 1 });
    const ve = node(g, 'Add', [v, g.init(new Float32Array([1e-5]), [])]);
    const n = node(g, 'Div', [d, node(g, 'Sqrt', [ve])]);
    return node(g, 'Add', [node(g, 'Mul', [n, g.init(gamma, [D])]), g.init(beta, [D])]);
  }, [1, T, D], (x) => rows(x, (r) => {
    const m = r.reduce((a, b) => a + b, 0) / D;
    const v = r.reduce((a, b) => a + (b - m) ** 2, 0) / D;
    return r.map((x, i) => ((x - m) / Math.sqrt(v + Math.fround(1e-5))) * gamma[i] + beta[i]);
  }), 2);
  // x (T x D) times its own transpose (D x T), the transpose a move of 16-bit values.
  await withinOneStep(t, 'MatMul of two activations (x times its Transpose)', [1, T, D], (g, x) => {
    const xt = g.qdq(node(g, 'Transpose', [x], { perm: [0, 2, 1] }), 1 / 2048, 30000);
    return node(g, 'Mul', [g.qdq(node(g, 'MatMul', [x, xt]), 1 / 128, 32768), g.init(new Float32Array([1 / 64]), [])]);
  }, [1, T, T], (x) => {
    const out = new Float64Array(T * T);
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
      let s = 0;
      for (let k = 0; k < D; k++) s += x[i * D + k] * x[j * D + k];
      out[i * T + j] = s / 64;
    }
    return out;
  }, 3);
  await withinOneStep(t, 'AveragePool 3x2 stride 3x2 with padding, padding not counted', [1, 2, 7, 8],
    (g, x) => node(g, 'AveragePool', [x], { kernel_shape: [3, 2], strides: [3, 2], pads: [1, 0, 1, 0], count_include_pad: 0 }), [1, 2, 3, 4],
    (x) => {
      const out = new Float64Array(2 * 3 * 4);
      for (let c = 0; c < 2; c++) for (let oh = 0; oh < 3; oh++) for (let ow = 0; ow < 4; ow++) {
        let s = 0; let n = 0;
        for (let h = oh * 3 - 1; h < oh * 3 + 2; h++) for (let w = ow * 2; w < ow * 2 + 2; w++) {
          if (h < 0 || h >= 7) continue;
          s += x[(c * 7 + h) * 8 + w]; n++;
        }
        out[(c * 3 + oh) * 4 + ow] = s / n;
      }
      return out;
    }, 4);
  await withinOneStep(t, 'MaxPool 3x2 stride 2 with padding', [1, 2, 7, 8],
    (g, x) => g.qdq(node(g, 'MaxPool', [x], { kernel_shape: [3, 2], strides: [2, 2], pads: [1, 0, 1, 0] }), 1 / 2048, 30000), [1, 2, 4, 4],
    (x) => {
      const out = new Float64Array(2 * 4 * 4);
      for (let c = 0; c < 2; c++) for (let oh = 0; oh < 4; oh++) for (let ow = 0; ow < 4; ow++) {
        let m = -Infinity;
        for (let h = oh * 2 - 1; h < oh * 2 + 2; h++) for (let w = ow * 2; w < ow * 2 + 2; w++) if (h >= 0 && h < 7) m = Math.max(m, x[(c * 7 + h) * 8 + w]);
        out[(c * 4 + oh) * 4 + ow] = m;
      }
      return out;
    }, 6);
  await withinOneStep(t, 'Sub of two activations (x - x/2, the second negated by a table)', [1, T, D],
    (g, x) => node(g, 'Sub', [x, g.qdq(node(g, 'Mul', [x, g.init(new Float32Array([0.5]), [])]), 1 / 8192, 25000)]), [1, T, D],
    (x) => x.map((v) => v - v / 2), 7);
  // ConvTranspose 3x3 stride 2 (int8 weights, per-channel scales, bias): exact sums in the
  // engine, so the float64 reference of the dequantized values lands on the same steps.
  const [Cd, Md, Hd, Wd] = [4, 3, 5, 6];
  const rand = rng(8);
  const wq = Int8Array.from({ length: Cd * Md * 9 }, () => Math.floor(rand() * 255) - 127);
  const ws = Float32Array.from({ length: Md }, () => 0.001 + rand() * 0.002);
  const bq = Int32Array.from({ length: Md }, () => Math.floor((rand() - 0.5) * 4e5));
  const bs = Float32Array.from(ws, (v) => f32(v / 2048));
  await withinOneStep(t, 'ConvTranspose 3x3 stride 2 pad 1, output padding 1', [1, Cd, Hd, Wd], (g, x) => {
    const w = g.name('w');
    g.nodes.push(makeNode('DequantizeLinear', [g.init(wq, [Cd, Md, 3, 3]), g.init(ws, [Md])], [w], { axis: 1 }));
    return node(g, 'ConvTranspose', [x, w, g.bias(bq, bs)], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] });
  }, [1, Md, 2 * Hd, 2 * Wd], (x) => {
    const OH = 2 * Hd, OW = 2 * Wd;
    const out = new Float64Array(Md * OH * OW);
    for (let m = 0; m < Md; m++) out.fill(bq[m] * bs[m], m * OH * OW, (m + 1) * OH * OW);
    for (let ci = 0; ci < Cd; ci++) for (let iy = 0; iy < Hd; iy++) for (let ix = 0; ix < Wd; ix++) for (let m = 0; m < Md; m++) {
      for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
        const oy = iy * 2 - 1 + ky, ox = ix * 2 - 1 + kx;
        if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
        out[(m * OH + oy) * OW + ox] += x[(ci * Hd + iy) * Wd + ix] * wq[((ci * Md + m) * 3 + ky) * 3 + kx] * ws[m];
      }
    }
    return out;
  }, 9);
  // Resize 2x: nearest (asymmetric) and bilinear (half_pixel).
  for (const mode of ['nearest', 'linear'] as const) {
    await withinOneStep(t, `Resize 2x ${mode}`, [1, 2, 4, 5], (g, x) => node(g, 'Resize', [x, '', g.init(new Float32Array([1, 1, 2, 2]), [4])],
      mode === 'nearest' ? { mode, coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' } : { mode, coordinate_transformation_mode: 'half_pixel' } as Record<string, unknown>),
    [1, 2, 8, 10], (x) => {
      const out = new Float64Array(2 * 8 * 10);
      const src = (o: number, len: number) => Math.min(Math.max((o + 0.5) / 2 - 0.5, 0), len - 1);
      for (let c = 0; c < 2; c++) for (let oy = 0; oy < 8; oy++) for (let ox = 0; ox < 10; ox++) {
        const at = (h: number, w: number) => x[(c * 4 + h) * 5 + w];
        let v: number;
        if (mode === 'nearest') v = at(Math.floor(oy / 2), Math.floor(ox / 2));
        else {
          const sy = src(oy, 4), sx = src(ox, 5);
          const y0 = Math.floor(sy), x0 = Math.floor(sx), y1 = Math.min(y0 + 1, 3), x1 = Math.min(x0 + 1, 4);
          const wy = sy - y0, wx = sx - x0;
          v = (at(y0, x0) * (1 - wx) + at(y0, x1) * wx) * (1 - wy) + (at(y1, x0) * (1 - wx) + at(y1, x1) * wx) * wy;
        }
        out[(c * 8 + oy) * 10 + ox] = v;
      }
      return out;
    }, mode === 'nearest' ? 10 : 11);
  }
  // A Slice and a Concat with an input at another scale (requantized by a table first).
  await withinOneStep(t, 'Slice, and Concat of inputs at two scales', [1, T, D], (g, x) => {
    const sl = node(g, 'Slice', [x, g.init(new BigInt64Array([2n]), [1]), g.init(new BigInt64Array([6n]), [1]), g.init(new BigInt64Array([2n]), [1])]);
    const half = g.qdq(node(g, 'Mul', [x, g.init(new Float32Array([0.5]), [])]), 1 / 8192, 25000);
    return node(g, 'Concat', [g.qdq(sl, 1 / 2048, 30000), half], { axis: 2 });
  }, [1, T, D + 4], (x) => {
    const out = new Float64Array(T * (D + 4));
    for (let i = 0; i < T; i++) for (let j = 0; j < D + 4; j++) out[i * (D + 4) + j] = j < 4 ? x[i * D + 2 + j] : x[i * D + j - 4] * 0.5;
    return out;
  }, 5);
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
  const h = g.name('pad');
  g.nodes.push(makeNode('Pad', [a, g.init(new BigInt64Array([0n, 0n, 1n, 1n, 0n, 0n, 1n, 1n]), [8])], [h]));
  const out = g.qdq(h, 1 / 1000, 30000);
  const bytes = g.model([1, 4, 3, 3], out, [1, 4, 5, 5]);
  t.throws(() => NativeBackend.load(bytes, { name: 'a16-pad' }),
    { message: /Pad.*16-bit activations \(W8A16\) are not computed by the native engine for this op yet/ });
});

// Mixed precision in the native engine: Softmax, LayerNormalization and Resize run in float
// inside one step between u8 in and u8 out, and must land within 1 output step of a float64
// reference written out here; the MatMul of two activations is exact int32 and must equal an
// integer reference bit for bit; Sub and Div reduce to exact tables and adds. What cannot be
// compiled is refused with the node named, and mutated plans are refused without crashing.
import t from 'tap';
import fc from 'fast-check';
import {
  DataType, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo, type NodeProto,
} from '../agent/onnx/model.js';
import { EdgeError } from '../agent/errors.js';
import { NativeBackend, compileModel, createEngine } from '../agent/runtime/native/index.js';
import { decodeModel } from '../agent/onnx/model.js';
import { QdqGraph, type Q } from './helpers/engine-graphs.js';

t.setTimeout(120_000);

const f32 = Math.fround;
const roundHalfEven = (x: number): number => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
const quant = (v: number, scale: number, zp: number): number => Math.min(255, Math.max(0, roundHalfEven(v / scale) + zp));

/** Random u8 codes and their float values, exactly on the input's quantization grid. */
function onGrid(rand: () => number, n: number, scale: number, zp: number): { q: Uint8Array; x: Float32Array } {
  const q = new Uint8Array(n); const x = new Float32Array(n);
  for (let i = 0; i < n; i++) { q[i] = Math.floor(rand() * 256); x[i] = (q[i] - zp) * scale; }
  return { q, x };
}

/** A QDQ model with several float inputs (QdqGraph.model takes one). */
function modelOf(g: QdqGraph, inputs: [string, number[]][], out: Q, opset = 13): Uint8Array {
  g.nodes.push(makeNode('Identity', [out.name], ['y']));
  return encodeModel(makeModel({
    name: 'float-inside', node: g.nodes, initializer: g.inits,
    input: inputs.map(([n, s]) => makeValueInfo(n, DataType.FLOAT, s)),
    output: [makeValueInfo('y', DataType.FLOAT, out.shape)],
  }, opset));
}

/** Runs the model natively and returns its output as u8 codes of the output quantization. */
async function runCodes(bytes: Uint8Array, feeds: Record<string, { shape: number[]; data: Float32Array }>, out: Q): Promise<{ codes: Int32Array; ops: string[] }> {
  const b = NativeBackend.load(bytes, { name: 'float-inside' });
  try {
    const r = await b.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, { dtype: 'float32' as const, ...v }])));
    const y = r.y.data as Float32Array;
    const ops = compileModel(decodeModel(bytes)).plan.ops.map((o) => o.op);
    return { codes: Int32Array.from(y, (v) => Math.round(v / out.scale) + out.zp), ops };
  } finally {
    await b.dispose();
  }
}

function worst(got: Int32Array, want: ArrayLike<number>): number {
  let w = 0;
  for (let i = 0; i < got.length; i++) w = Math.max(w, Math.abs(got[i] - want[i]));
  return w;
}

/** Strides of a dense row-major shape. */
const strides = (s: number[]): number[] => s.map((_, i) => s.slice(i + 1).reduce((a, b) => a * b, 1));

t.test('Softmax: float inside, within 1 output step of float64 (any axis, NHWC maps, opset < 13 coercion)', async (t) => {
  const cases: { shape: number[]; axis?: number; opset: number; signed?: boolean }[] = [
    { shape: [1, 10], opset: 13 },
    { shape: [1, 3, 200], axis: -1, opset: 13 },
    { shape: [1, 4, 5, 6], axis: 1, opset: 13 },   // the channel axis of an NHWC map: innermost in storage
    { shape: [1, 4, 5, 6], axis: 2, opset: 13 },   // H of an NHWC map: strided in storage
    { shape: [1, 4, 5, 6], axis: 3, opset: 13 },
    { shape: [1, 3, 4, 5], axis: 1, opset: 11 },   // coerced to [1, 60]
    { shape: [1, 16, 200], axis: 1, opset: 13 },   // a middle axis over many slices (YOLOv8's DFL): the kernel's blocks of 64
    { shape: [2, 7], axis: 0, opset: 13, signed: true },
  ];
  for (const [ci, c] of cases.entries()) {
    const g = new QdqGraph(100 + ci, c.signed);
    const inScale = 0.03 + ci * 0.01; const inZp = 120;
    const x = g.input('x', c.shape, inScale, inZp);
    const sm = g.id('sm');
    g.nodes.push(makeNode('Softmax', [x.name], [sm], c.axis === undefined ? {} : { axis: c.axis }));
    const out = g.qdq(sm, 1 / 256, 0, c.shape);
    const bytes = modelOf(g, [['x', c.shape]], out, c.opset);
    const n = c.shape.reduce((a, b) => a * b, 1);
    const { q, x: data } = onGrid(g.rand, n, inScale, inZp);
    const r = await runCodes(bytes, { x: { shape: c.shape, data } }, out);
    // float64 reference on the logical (NCHW) layout.
    const r0 = c.shape.length;
    const axis = c.axis === undefined ? (c.opset < 13 ? 1 : r0 - 1) : (c.axis + r0) % r0;
    const [outer, len, inner] = c.opset < 13
      ? [c.shape.slice(0, axis).reduce((a, b) => a * b, 1), c.shape.slice(axis).reduce((a, b) => a * b, 1), 1]
      : [c.shape.slice(0, axis).reduce((a, b) => a * b, 1), c.shape[axis], c.shape.slice(axis + 1).reduce((a, b) => a * b, 1)];
    const want = new Int32Array(n);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const at = (k: number): number => (o * len + k) * inner + i;
        let mx = -Infinity; let sum = 0;
        for (let k = 0; k < len; k++) mx = Math.max(mx, (q[at(k)] - inZp) * inScale);
        for (let k = 0; k < len; k++) sum += Math.exp((q[at(k)] - inZp) * inScale - mx);
        for (let k = 0; k < len; k++) want[at(k)] = quant(Math.exp((q[at(k)] - inZp) * inScale - mx) / sum, 1 / 256, 0);
      }
    }
    t.ok(r.ops.includes('softmax'), `[${c.shape}] axis ${c.axis}: one softmax step (${r.ops.join(', ')})`);
    t.ok(worst(r.codes, want) <= 1, `[${c.shape}] axis ${c.axis} opset ${c.opset}: worst ${worst(r.codes, want)} steps from float64`);
  }
});

t.test('LayerNormalization (opset 17): float inside, within 1 output step of float64', async (t) => {
  for (const [ci, c] of [
    { shape: [1, 6, 32], quantizedGamma: false, eps: 1e-5 },
    { shape: [1, 25, 120], quantizedGamma: true, eps: 1e-6 },
    { shape: [3, 64], quantizedGamma: false, eps: 1e-3 },
  ].entries()) {
    const g = new QdqGraph(200 + ci);
    const inScale = 0.05; const inZp = 100;
    const x = g.input('x', c.shape, inScale, inZp);
    const len = c.shape[c.shape.length - 1];
    const gamma = Float32Array.from({ length: len }, () => 0.5 + g.rand());
    const beta = Float32Array.from({ length: len }, () => g.rand() - 0.5);
    let gName = g.const(gamma, [len], 'gamma');
    let gammaUsed = gamma;
    if (c.quantizedGamma) {
      // Scale quantized to uint8 with a DequantizeLinear in front, as a QDQ exporter writes it.
      const gs = 2 / 255;
      const gq = Uint8Array.from(gamma, (v) => Math.round(v / gs));
      gammaUsed = Float32Array.from(gq, (v) => v * gs);
      const raw = g.const(gq, [len], 'gq');
      gName = g.id('gdq');
      g.nodes.push(makeNode('DequantizeLinear', [raw, g.const(new Float32Array([gs]), [], 's'), g.const(new Uint8Array([0]), [], 'z')], [gName]));
    }
    const ln = g.id('ln');
    g.nodes.push(makeNode('LayerNormalization', [x.name, gName, g.const(beta, [len], 'beta')], [ln], { axis: -1, epsilon: { float: c.eps } }));
    const outScale = 0.03; const outZp = 128;
    const out = g.qdq(ln, outScale, outZp, c.shape);
    const bytes = modelOf(g, [['x', c.shape]], out, 17);
    const n = c.shape.reduce((a, b) => a * b, 1);
    const { q, x: data } = onGrid(g.rand, n, inScale, inZp);
    const r = await runCodes(bytes, { x: { shape: c.shape, data } }, out);
    const want = new Int32Array(n);
    for (let row = 0; row < n / len; row++) {
      let mean = 0; let v = 0;
      for (let k = 0; k < len; k++) mean += (q[row * len + k] - inZp) * inScale;
      mean /= len;
      for (let k = 0; k < len; k++) v += ((q[row * len + k] - inZp) * inScale - mean) ** 2;
      v /= len;
      for (let k = 0; k < len; k++) {
        const y = (((q[row * len + k] - inZp) * inScale - mean) / Math.sqrt(v + f32(c.eps))) * gammaUsed[k] + beta[k];
        want[row * len + k] = quant(y, outScale, outZp);
      }
    }
    t.same(r.ops.filter((o) => o === 'layernorm'), ['layernorm'], `[${c.shape}]: one layernorm step`);
    t.ok(worst(r.codes, want) <= 1, `[${c.shape}] gamma ${c.quantizedGamma ? 'quantized' : 'float'}: worst ${worst(r.codes, want)} steps from float64`);
  }
});

/** ONNX Resize on NCHW float64, written from the operator's definition (edge-padded neighbours). */
function resizeReference(x: Float64Array, [N, C, H, W]: number[], OH: number, OW: number, sh: number, sw: number,
  mode: string, ctm: string, nm: string): Float64Array {
  const coord = (o: number, scale: number, inLen: number, outLen: number): number => {
    if (ctm === 'asymmetric') return o / scale;
    if (ctm === 'align_corners') return outLen === 1 ? 0 : o * (inLen - 1) / (outLen - 1);
    if (ctm === 'pytorch_half_pixel') return outLen > 1 ? (o + 0.5) / scale - 0.5 : 0;
    return (o + 0.5) / scale - 0.5; // half_pixel
  };
  const nearest = (v: number): number => {
    if (nm === 'floor') return Math.floor(v);
    if (nm === 'ceil') return Math.ceil(v);
    const fl = Math.floor(v);
    if (v - fl === 0.5) return nm === 'round_prefer_ceil' ? fl + 1 : fl;
    return v - fl < 0.5 ? fl : fl + 1;
  };
  const clampTo = (i: number, len: number): number => Math.min(Math.max(i, 0), len - 1);
  const y = new Float64Array(N * C * OH * OW);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) {
    const at = (yy: number, xx: number): number => x[((n * C + c) * H + clampTo(yy, H)) * W + clampTo(xx, W)];
    for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      const sy = coord(oy, sh, H, OH); const sx = coord(ox, sw, W, OW);
      let v: number;
      if (mode === 'nearest') v = at(nearest(sy), nearest(sx));
      else {
        const y0 = Math.floor(sy); const x0 = Math.floor(sx);
        const wy = sy - y0; const wx = sx - x0;
        v = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) + wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1));
      }
      y[((n * C + c) * OH + oy) * OW + ox] = v;
    }
  }
  return y;
}

t.test('Resize: nearest (every nearest_mode) and linear, every coordinate mode, scales or sizes', async (t) => {
  const ctms = ['half_pixel', 'asymmetric', 'align_corners', 'pytorch_half_pixel'];
  const cases: { mode: string; nm?: string; ctm: string; sizes?: number[]; scales?: number[]; sameScale: boolean }[] = [];
  for (const ctm of ctms) {
    for (const nm of ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil']) {
      cases.push({ mode: 'nearest', nm, ctm, scales: [1, 1, 2, 2], sameScale: true });
    }
    cases.push({ mode: 'nearest', nm: 'round_prefer_floor', ctm, sizes: [1, 3, 9, 4], sameScale: false });
    cases.push({ mode: 'linear', ctm, scales: [1, 1, 2, 2], sameScale: true });
    cases.push({ mode: 'linear', ctm, sizes: [1, 3, 3, 11], sameScale: false });
  }
  const shape = [1, 3, 5, 7];
  for (const [ci, c] of cases.entries()) {
    const g = new QdqGraph(300 + ci);
    const inScale = 0.04; const inZp = 90;
    const x = g.input('x', shape, inScale, inZp);
    const inputs = [x.name, g.const(new Float32Array(0), [0], 'roi'),
      c.scales ? g.const(new Float32Array(c.scales), [4], 'scales') : '',
      ...(c.sizes ? [g.const(BigInt64Array.from(c.sizes.map(BigInt)), [4], 'sizes')] : [])];
    if (!c.scales) inputs[2] = '';
    const rs = g.id('rs');
    const attrs: Record<string, string> = { mode: c.mode, coordinate_transformation_mode: c.ctm };
    if (c.nm) attrs.nearest_mode = c.nm;
    g.nodes.push(makeNode('Resize', inputs, [rs], attrs));
    const OH = c.sizes ? c.sizes[2] : shape[2] * c.scales![2];
    const OW = c.sizes ? c.sizes[3] : shape[3] * c.scales![3];
    const [outScale, outZp] = c.sameScale ? [inScale, inZp] : [0.03, 128];
    const out = g.qdq(rs, outScale, outZp, [1, 3, OH, OW]);
    const bytes = modelOf(g, [['x', shape]], out, 13);
    const { q, x: data } = onGrid(g.rand, 105, inScale, inZp);
    const r = await runCodes(bytes, { x: { shape, data } }, out);
    const ref = resizeReference(Float64Array.from(q, (v) => (v - inZp) * inScale), shape, OH, OW,
      c.sizes ? OH / shape[2] : c.scales![2], c.sizes ? OW / shape[3] : c.scales![3], c.mode, c.ctm, c.nm ?? '');
    const want = Int32Array.from(ref, (v) => quant(v, outScale, outZp));
    const w = worst(r.codes, want);
    const what = `${c.mode}${c.nm ? ` ${c.nm}` : ''} ${c.ctm} ${c.sizes ? `sizes ${c.sizes.slice(2)}` : 'x2'}`;
    // Nearest at the same scale copies bytes: exact. Anything else is float: at most one step.
    if (c.mode === 'nearest' && c.sameScale) t.equal(w, 0, `${what}: exact`);
    else t.ok(w <= 1, `${what}: worst ${w} steps from float64`);
  }
});

/** The engine's requantization in float32 (kernels/common.h), for the exact MatMul reference. */
function requantize(acc: number, mult: number, zp: number): number {
  let f = f32(f32(acc) * mult);
  f = Math.min(Math.max(f, -zp), 255 - zp);
  return roundHalfEven(f) + zp;
}

t.test('MatMul of two activations: exact int32 sums, equal to the integer reference bit for bit', async (t) => {
  for (const [ci, c] of [
    { a: [1, 2, 5, 12], b: [1, 2, 12, 7] },   // 4D (NHWC in the arena) batched, as attention's Q x K^T
    { a: [2, 9, 40], b: [40, 6] },              // b broadcast over the batch
    { a: [16, 33], b: [2, 33, 17] },            // a broadcast
    { a: [1, 1, 300], b: [1, 300, 3] },         // deep K
  ].entries()) {
    const g = new QdqGraph(400 + ci);
    const [sa, za, sb, zb] = [0.02, 128, 0.03, 100 + ci];
    const A = g.input('a', c.a, sa, za);
    const B = g.input('b', c.b, sb, zb);
    const mm = g.id('mm');
    g.nodes.push(makeNode('MatMul', [A.name, B.name], [mm]));
    const K = c.a[c.a.length - 1]; const M = c.a[c.a.length - 2]; const N = c.b[c.b.length - 1];
    const batchA = c.a.slice(0, -2); const batchB = c.b.slice(0, -2);
    const nA = batchA.reduce((x, y) => x * y, 1); const nB = batchB.reduce((x, y) => x * y, 1);
    const batchShape = nA >= nB ? batchA : batchB;
    const outShape = [...batchShape, M, N];
    const outScale = sa * sb * 30 * Math.sqrt(K); const outZp = 128;
    const out = g.qdq(mm, outScale, outZp, outShape);
    const bytes = modelOf(g, [['a', c.a], ['b', c.b]], out);
    const ga = onGrid(g.rand, c.a.reduce((x, y) => x * y, 1), sa, za);
    const gb = onGrid(g.rand, c.b.reduce((x, y) => x * y, 1), sb, zb);
    const r = await runCodes(bytes, { a: { shape: c.a, data: ga.x }, b: { shape: c.b, data: gb.x } }, out);
    const mult = f32(f32(f32(sa) * f32(sb)) / f32(outScale));
    const batch = Math.max(nA, nB);
    const want = new Int32Array(batch * M * N);
    for (let bt = 0; bt < batch; bt++) for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) {
        acc += (ga.q[(nA === 1 ? 0 : bt) * M * K + m * K + k] - za) * (gb.q[(nB === 1 ? 0 : bt) * K * N + k * N + n] - zb);
      }
      want[(bt * M + m) * N + n] = requantize(acc, mult, outZp);
    }
    t.ok(r.ops.includes('qmatmul'), `[${c.a}] x [${c.b}]: a qmatmul step`);
    t.equal(worst(r.codes, want), 0, `[${c.a}] x [${c.b}]: exact`);
  }
});

t.test('Sub and Div: by a constant (a table), Sub of activations (an add of the exactly negated operand)', async (t) => {
  const shape = [1, 4, 3, 5];
  const cases: { name: string; build: (g: QdqGraph, x: Q, y: Q) => { node: NodeProto; fn: (a: number, b: number, i: number) => number; outScale: number } }[] = [
    { name: 'x - y (two activations)', build: (g, x, y) => ({ node: makeNode('Sub', [x.name, y.name], ['r']), fn: (a, b) => a - b, outScale: 0.06 }) },
    { name: 'x - 0.7 (float scalar)', build: (g, x) => ({ node: makeNode('Sub', [x.name, g.const(new Float32Array([0.7]), [], 'k')], ['r']), fn: (a) => a - f32(0.7), outScale: 0.04 }) },
    { name: '2 - x (quantized scalar first)', build: (g, x) => {
      const k = g.constOperand([], 0.02); // a random uint8 code around zero point 128
      const raw = g.inits.find((i) => i.name === g.nodes[g.nodes.length - 1].input![0])!;
      const kv = ((raw.rawData as Uint8Array)[0] - 128) * 0.02;
      return { node: makeNode('Sub', [k.name, x.name], ['r']), fn: (a) => kv - a, outScale: 0.04 };
    } },
    { name: 'x / 2.5 (float scalar)', build: (g, x) => ({ node: makeNode('Div', [x.name, g.const(new Float32Array([2.5]), [], 'k')], ['r']), fn: (a) => a / f32(2.5), outScale: 0.02 }) },
    { name: 'x * 1.5 (float scalar Mul)', build: (g, x) => ({ node: makeNode('Mul', [x.name, g.const(new Float32Array([1.5]), [], 'k')], ['r']), fn: (a) => a * 1.5, outScale: 0.06 }) },
    { name: 'x - c (per-channel quantized constant)', build: (g, x) => {
      const k = g.constOperand([1, 4, 1, 1], 0.01);
      const raw = g.inits.find((i) => i.name === g.nodes[g.nodes.length - 1].input![0])!;
      const kv = Array.from(raw.rawData as Uint8Array, (v) => (v - 128) * 0.01);
      return { node: makeNode('Sub', [x.name, k.name], ['r']), fn: (a, _b, i) => a - kv[Math.floor(i / 15) % 4], outScale: 0.05 };
    } },
  ];
  for (const [ci, c] of cases.entries()) {
    const g = new QdqGraph(500 + ci);
    const [sx, zx, sy, zy] = [0.04, 120, 0.03, 140];
    const x = g.input('x', shape, sx, zx);
    const y = g.input('y', shape, sy, zy);
    const { node, fn, outScale } = c.build(g, x, y);
    node.output = [g.id('r')];
    g.nodes.push(node);
    const out = g.qdq(node.output[0], outScale, 128, shape);
    const usesY = node.input!.includes(y.name);
    if (!usesY) g.nodes.splice(g.nodes.findIndex((n) => n.output![0] === y.name) - 1, 2); // drop y's QDQ pair
    const bytes = modelOf(g, usesY ? [['x', shape], ['y', shape]] : [['x', shape]], out);
    const gx = onGrid(g.rand, 60, sx, zx); const gy = onGrid(g.rand, 60, sy, zy);
    const feeds: Record<string, { shape: number[]; data: Float32Array }> = { x: { shape, data: gx.x } };
    if (usesY) feeds.y = { shape, data: gy.x };
    const r = await runCodes(bytes, feeds, out);
    const want = Int32Array.from({ length: 60 }, (_, i) => quant(fn((gx.q[i] - zx) * sx, (gy.q[i] - zy) * sy, i), outScale, 128));
    t.ok(worst(r.codes, want) <= 1, `${c.name}: worst ${worst(r.codes, want)} steps from float64 (${r.ops.join(', ')})`);
  }
});

t.test('uses the engine cannot compile are refused with the node named', async (t) => {
  const load = (build: (g: QdqGraph, x: Q) => Q | string, opset = 13): unknown => {
    const g = new QdqGraph(600);
    const x = g.input('x', [1, 2, 4, 4], 0.02, 128);
    const r = build(g, x);
    const bytes = typeof r === 'string'
      ? encodeModel(makeModel({
          name: 'f', node: g.nodes, initializer: g.inits,
          input: [makeValueInfo('x', DataType.FLOAT, [1, 2, 4, 4])], output: [makeValueInfo(r, DataType.FLOAT, [1, 2, 4, 4])],
        }, opset))
      : modelOf(g, [['x', [1, 2, 4, 4]]], r, opset);
    try { NativeBackend.load(bytes, { name: 'bad' }); } catch (e) { return e; }
    return undefined;
  };
  const softmaxOut = load((g, x) => { g.nodes.push(makeNode('Softmax', [x.name], ['probs'], { axis: 1 })); return 'probs'; });
  t.match(softmaxOut, { code: 'EDGE_MODEL_UNSUPPORTED_OPS', message: /Softmax 'Softmax_probs'.*graph output/ }, 'a float Softmax graph output (a classifier\'s last op) is refused, naming Softmax');
  const cubic = load((g, x) => {
    g.nodes.push(makeNode('Resize', [x.name, '', g.const(new Float32Array([1, 1, 2, 2]), [4], 's')], ['rs'], { mode: 'cubic' }));
    return g.qdq('rs', 0.02, 128, [1, 2, 8, 8]);
  });
  t.match(cubic, { code: 'EDGE_MODEL_UNSUPPORTED_OPS', message: /Resize 'Resize_rs'.*mode 'cubic'/ });
  const crop = load((g, x) => {
    g.nodes.push(makeNode('Resize', [x.name, '', g.const(new Float32Array([1, 1, 2, 2]), [4], 's')], ['rs'], { coordinate_transformation_mode: 'tf_crop_and_resize' }));
    return g.qdq('rs', 0.02, 128, [1, 2, 8, 8]);
  });
  t.match(crop, { message: /coordinate_transformation_mode 'tf_crop_and_resize'/ });
  const divAct = load((g, x) => { g.nodes.push(makeNode('Div', [x.name, x.name], ['d'])); return g.qdq('d', 0.02, 128, [1, 2, 4, 4]); });
  t.match(divAct, { message: /Div 'Div_d'.*divisor must be a single constant/ });
  const lnAxis = load((g, x) => {
    g.nodes.push(makeNode('LayerNormalization', [x.name, g.const(new Float32Array([1, 1, 1, 1]), [4], 'g')], ['ln'], { axis: 1 }));
    return g.qdq('ln', 0.02, 128, [1, 2, 4, 4]);
  }, 17);
  t.match(lnAxis, { message: /LayerNormalization 'LayerNormalization_ln'.*last axis/ });
});

t.test('mutated float-inside plans are refused cleanly or still run', async (t) => {
  // One plan with every new step: resize (linear) -> softmax -> layernorm -> qmatmul -> deconv.
  const g = new QdqGraph(700);
  const x = g.input('x', [1, 2, 3, 4], 0.03, 128);
  g.nodes.push(makeNode('Resize', [x.name, '', g.const(new Float32Array([1, 1, 2, 2]), [4], 's')], ['rs'], { mode: 'linear' }));
  const rs = g.qdq('rs', 0.03, 128, [1, 2, 6, 8]);
  g.nodes.push(makeNode('Softmax', [rs.name], ['sm'], { axis: -1 }));
  const sm = g.qdq('sm', 1 / 256, 0, [1, 2, 6, 8]);
  g.nodes.push(makeNode('LayerNormalization', [sm.name, g.const(new Float32Array(8).fill(1), [8], 'g')], ['ln'], { axis: -1 }));
  const ln = g.qdq('ln', 0.02, 128, [1, 2, 6, 8]);
  // Attention-like: [1,2,6,8] x a [1,2,8,6] view of the softmax.
  const r8 = g.id('r');
  g.nodes.push(makeNode('Reshape', [sm.name, g.const(BigInt64Array.from([1n, 2n, 8n, 6n]), [4], 'sh')], [r8]));
  g.nodes.push(makeNode('MatMul', [ln.name, r8], ['mm']));
  const mm = g.qdq('mm', 0.05, 128, [1, 2, 6, 6]);
  const w = g.const(Int8Array.from({ length: 16 }, (_, i) => i * 7 - 50), [2, 2, 2, 2], 'w');
  g.nodes.push(makeNode('DequantizeLinear', [w, g.const(new Float32Array([0.01]), [], 'ws'), g.const(new Int8Array(1), [], 'wz')], ['wdq']));
  g.nodes.push(makeNode('ConvTranspose', [mm.name, 'wdq'], ['ct'], { kernel_shape: [2, 2], strides: [2, 2] }));
  const ct = g.qdq('ct', 0.05, 128, [1, 2, 12, 12]);
  const compiled = compileModel(decodeModel(modelOf(g, [['x', [1, 2, 3, 4]]], ct, 17)));
  const kinds = compiled.plan.ops.map((o) => o.op);
  const added = ['resize', 'softmax', 'layernorm', 'qmatmul', 'deconv'];
  for (const k of added) t.ok(kinds.includes(k as (typeof kinds)[number]), `the plan has a ${k} step`);
  const input = new Float32Array(24).fill(0.1);
  const valid = createEngine(compiled.plan, compiled.weights);
  t.equal(valid.run([input])[0].length, 288, 'the valid plan runs');
  valid.dispose();
  const mine = compiled.plan.ops.map((o, i) => [o, i] as const).filter(([o]) => added.includes(o.op)).map(([, i]) => i);
  const odd = [-1, 0, 1, 2, 3, 7, 255, 256, 1e9, 0.5, NaN, Infinity, 'x', null, [], true, false];
  let refused = 0; let accepted = 0;
  fc.assert(fc.property(fc.nat(10_000), fc.nat(10_000), fc.constantFrom(...odd), fc.boolean(), (pickOp, pickKey, value, inList) => {
    const plan = structuredClone(compiled.plan) as unknown as { ops: Record<string, unknown>[] };
    const weights = compiled.weights.map((w) => w.slice());
    const op = plan.ops[mine[pickOp % mine.length]];
    const keys = Object.keys(op).filter((k) => k !== 'op');
    const key = keys[pickKey % keys.length];
    const cur = op[key];
    if (inList && Array.isArray(cur) && cur.length) cur[pickKey % cur.length] = structuredClone(value);
    else if (pickKey % 7 === 0) delete op[key];
    else op[key] = structuredClone(value);
    let engine;
    try {
      engine = createEngine(plan, weights);
    } catch (err) {
      refused++;
      if (!(err instanceof EdgeError) || err.code !== 'EDGE_NATIVE_PLAN_INVALID' || err.message.length < 20) {
        throw new Error(`mutating ${String(op.op)}.${key} was refused badly: ${String(err)}`);
      }
      return;
    }
    accepted++;
    try { engine.run([input]); } catch (err) { if (!(err instanceof Error)) throw err; } finally { engine.dispose(); }
  }), { numRuns: 400, seed: 1818 });
  t.ok(refused > 150, `${refused} mutated plans refused with EDGE_NATIVE_PLAN_INVALID`);
  t.ok(accepted > 0, `${accepted} harmless mutations still build and run`);
});

t.test('ConvTranspose: int8 weights, exact int32 sums, equal to the integer reference bit for bit', async (t) => {
  const cases: { C: number; M: number; k: number; s: number; pad: number; opad: number; group: number; perChannel: boolean; relu: boolean; H: number; W: number }[] = [
    { C: 8, M: 4, k: 2, s: 2, pad: 0, opad: 0, group: 1, perChannel: false, relu: false, H: 5, W: 6 },  // PP-OCR det's FPN upsampling
    { C: 6, M: 6, k: 2, s: 2, pad: 0, opad: 0, group: 1, perChannel: true, relu: true, H: 4, W: 4 },
    { C: 4, M: 6, k: 3, s: 2, pad: 1, opad: 1, group: 2, perChannel: false, relu: false, H: 3, W: 5 },
    { C: 3, M: 5, k: 4, s: 3, pad: 2, opad: 0, group: 1, perChannel: true, relu: false, H: 3, W: 2 },
  ];
  for (const [ci, c] of cases.entries()) {
    const g = new QdqGraph(800 + ci);
    const [sx, zx] = [0.03, 110];
    const shape = [1, c.C, c.H, c.W];
    const x = g.input('x', shape, sx, zx);
    const Mg = c.M / c.group; const Cg = c.C / c.group;
    const wq = Int8Array.from({ length: c.C * Mg * c.k * c.k }, () => Math.floor(g.rand() * 255) - 127);
    const ws = Array.from({ length: c.perChannel ? c.M : 1 }, () => 0.003 + g.rand() * 0.01);
    const wRaw = g.const(wq, [c.C, Mg, c.k, c.k], 'w');
    const wName = g.id('wdq');
    g.nodes.push(makeNode('DequantizeLinear', [wRaw, g.const(new Float32Array(ws), c.perChannel ? [c.M] : [], 'ws'),
      g.const(new Int8Array(c.perChannel ? c.M : 1), c.perChannel ? [c.M] : [], 'wz')], [wName], c.perChannel ? { axis: 1 } : {}));
    const bq = Int32Array.from({ length: c.M }, () => Math.floor((g.rand() - 0.5) * 3000));
    const bName = g.id('bdq');
    const bScales = Array.from({ length: c.M }, (_, m) => f32(sx * ws[c.perChannel ? m : 0]));
    g.nodes.push(makeNode('DequantizeLinear', [g.const(bq, [c.M], 'b'), g.const(new Float32Array(bScales), [c.M], 'bs'), g.const(new Int32Array(c.M), [c.M], 'bz')], [bName], { axis: 0 }));
    const y = g.id('ct');
    g.nodes.push(makeNode('ConvTranspose', [x.name, wName, bName], [y], {
      kernel_shape: [c.k, c.k], strides: [c.s, c.s], pads: [c.pad, c.pad, c.pad, c.pad], output_padding: [c.opad, c.opad], group: c.group,
    }));
    let last = y;
    if (c.relu) { last = g.id('relu'); g.nodes.push(makeNode('Relu', [y], [last])); }
    const OH = (c.H - 1) * c.s - 2 * c.pad + c.k + c.opad; const OW = (c.W - 1) * c.s - 2 * c.pad + c.k + c.opad;
    const outScale = sx * ws[0] * 30 * Math.sqrt(Cg * c.k * c.k / (c.s * c.s)); const outZp = c.relu ? 5 : 128;
    const out = g.qdq(last, outScale, outZp, [1, c.M, OH, OW]);
    const bytes = modelOf(g, [['x', shape]], out);
    const gx = onGrid(g.rand, c.C * c.H * c.W, sx, zx);
    const r = await runCodes(bytes, { x: { shape, data: gx.x } }, out);
    // The definition, gathered per output (the kernel scatters), in exact integers.
    const want = new Int32Array(c.M * OH * OW);
    for (let m = 0; m < c.M; m++) {
      const grp = Math.floor(m / Mg);
      const mult = f32(f32(f32(sx) * f32(ws[c.perChannel ? m : 0])) / f32(outScale));
      for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
        let acc = bq[m];
        for (let ky = 0; ky < c.k; ky++) for (let kx = 0; kx < c.k; kx++) {
          const ty = oy + c.pad - ky; const tx = ox + c.pad - kx;
          if (ty < 0 || tx < 0 || ty % c.s || tx % c.s) continue;
          const iy = ty / c.s; const ix = tx / c.s;
          if (iy >= c.H || ix >= c.W) continue;
          for (let ch = grp * Cg; ch < (grp + 1) * Cg; ch++) {
            acc += (gx.q[(ch * c.H + iy) * c.W + ix] - zx) * wq[((ch * Mg + (m - grp * Mg)) * c.k + ky) * c.k + kx];
          }
        }
        let v = requantize(acc, mult, outZp);
        if (c.relu) v = Math.max(v, outZp);
        want[(m * OH + oy) * OW + ox] = v;
      }
    }
    const what = `C=${c.C} M=${c.M} k=${c.k} s=${c.s} pad=${c.pad} opad=${c.opad} group=${c.group}${c.perChannel ? ' per-channel' : ''}${c.relu ? ' +Relu' : ''}`;
    t.same(r.ops.filter((o) => o === 'deconv'), ['deconv'], `${what}: one deconv step${c.relu ? ' with the Relu fused' : ''} (${r.ops.join(', ')})`);
    t.equal(worst(r.codes, want), 0, `${what}: exact`);
  }
});

t.test('a LayerNorm spelled out (ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add) becomes one layernorm step', async (t) => {
  for (const [ci, c] of [
    { style: 'PyTorch (Pow, opset 13)', square: 'Pow', affine: true, opset: 13 },
    { style: 'PaddleOCR SVTR (Pow, opset 11)', square: 'Pow', affine: true, opset: 11 },
    { style: 'Mul(d, d), no affine', square: 'Mul', affine: false, opset: 13 },
  ].entries()) {
    const g = new QdqGraph(900 + ci);
    const shape = [1, 10, 48];
    const len = 48; const eps = 1e-6;
    const inScale = 0.04; const inZp = 128;
    const x = g.input('x', shape, inScale, inZp);
    const gamma = Float32Array.from({ length: len }, () => 0.5 + g.rand());
    const beta = Float32Array.from({ length: len }, () => g.rand() - 0.5);
    const node = (op: string, inputs: string[], attrs: Record<string, number[] | number> = {}): string => {
      const o = g.id(op.toLowerCase()); g.nodes.push(makeNode(op, inputs, [o], attrs)); return o;
    };
    const mean = node('ReduceMean', [x.name], { axes: [-1] });
    const d = node('Sub', [x.name, mean]);
    const sq = c.square === 'Pow' ? node('Pow', [d, g.const(new Float32Array([2]), [], 'two')]) : node('Mul', [d, d]);
    const v = node('ReduceMean', [sq], { axes: [-1] });
    const ve = node('Add', [v, g.const(new Float32Array([eps]), [], 'eps')]);
    const sd = node('Sqrt', [ve]);
    let y = node('Div', [d, sd]);
    if (c.affine) y = node('Add', [node('Mul', [y, g.const(gamma, [len], 'gamma')]), g.const(beta, [len], 'beta')]);
    const outScale = 0.03; const outZp = 128;
    const out = g.qdq(y, outScale, outZp, shape);
    const bytes = modelOf(g, [['x', shape]], out, c.opset);
    const { q, x: data } = onGrid(g.rand, 480, inScale, inZp);
    const r = await runCodes(bytes, { x: { shape, data } }, out);
    const want = new Int32Array(480);
    for (let row = 0; row < 10; row++) {
      let m = 0; let s2 = 0;
      for (let k = 0; k < len; k++) m += (q[row * len + k] - inZp) * inScale;
      m /= len;
      for (let k = 0; k < len; k++) s2 += ((q[row * len + k] - inZp) * inScale - m) ** 2;
      s2 /= len;
      for (let k = 0; k < len; k++) {
        const nrm = ((q[row * len + k] - inZp) * inScale - m) / Math.sqrt(s2 + f32(eps));
        want[row * len + k] = quant(c.affine ? nrm * gamma[k] + beta[k] : nrm, outScale, outZp);
      }
    }
    t.same(r.ops, ['quantize', 'layernorm', 'dequantize'], `${c.style}: the nine nodes are one layernorm step`);
    t.ok(worst(r.codes, want) <= 1, `${c.style}: worst ${worst(r.codes, want)} steps from float64`);
  }
  // Quantized in the middle: refused with the node named.
  const g = new QdqGraph(950);
  const x = g.input('x', [1, 4, 8], 0.04, 128);
  g.nodes.push(makeNode('ReduceMean', [x.name], ['mean'], { axes: [-1] }));
  g.nodes.push(makeNode('Sub', [x.name, 'mean'], ['d']));
  const out = g.qdq('d', 0.04, 128, [1, 4, 8]);
  t.throws(() => NativeBackend.load(modelOf(g, [['x', [1, 4, 8]]], out), { name: 'half' }),
    { code: 'EDGE_MODEL_UNSUPPORTED_OPS', message: /Sub 'Sub_d'.*quantized in the middle, after its centred step/ });
});

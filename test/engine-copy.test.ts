// The native engine's int8 data movement (Concat, Split, Slice, Transpose, Pad) and Max/Min, in
// QDQ form (and QLinearConcat): every output byte equals an exact integer reference written out
// here (moves are copies; a change of scale is the float32 requantization formula), on plain
// and NHWC-stored maps, and agrees with ONNX Runtime within one step (exactly, for the moves).
// Malformed 'copy'/'max' plans are refused by the C++ checks without crashing.
import t from 'tap';
t.setTimeout(180_000);
import fc from 'fast-check';
import * as ort from 'onnxruntime-node';
import { DataType, decodeModel, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo, type NodeProto, type TensorProto } from '../agent/onnx/model.js';
import { EdgeError } from '../agent/errors.js';
import { NativeBackend, compileModel, createEngine } from '../agent/runtime/native/index.js';
import { mulberry32 } from '../tools/prng.js';

const f32 = Math.fround;
const roundHalfEven = (x: number): number => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
const clampU8 = (v: number) => Math.min(255, Math.max(0, v));
/** The requantization every variant computes: float32 multiply, divide, round half to even. */
const requant = (q: number, s: number, z: number, so: number, zo: number): number => clampU8(roundHalfEven(f32(f32(f32(q - z) * f32(s)) / f32(so))) + zo);

interface Nd { shape: number[]; data: Uint8Array }
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
const strides = (s: number[]) => s.map((_, i) => numel(s.slice(i + 1)));
function index(s: number[], i: number): number[] {
  return s.map((d, k) => Math.floor(i / numel(s.slice(k + 1))) % d);
}
function at(x: Nd, ix: number[]): number {
  const st = strides(x.shape);
  return x.data[ix.reduce((o, v, k) => o + v * st[k], 0)];
}
function build(shape: number[], f: (ix: number[]) => number): Nd {
  const data = new Uint8Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = f(index(shape, i));
  return { shape, data };
}

// ---- graphs: float inputs quantized exactly (values on the grid), uint8 output ---------------

interface In { name: string; shape: number[]; scale: number; zp: number }
class G {
  nodes: NodeProto[] = [];
  inits: TensorProto[] = [];
  n = 0;
  id(p: string) { return `${p}${this.n++}`; }
  c(data: Float32Array | Uint8Array | BigInt64Array, shape: number[]): string {
    const name = this.id('c');
    this.inits.push(makeTensor(name, shape, data));
    return name;
  }
  q(x: string, scale: number, zp: number): string {
    const y = this.id('q');
    this.nodes.push(makeNode('QuantizeLinear', [x, this.c(new Float32Array([scale]), []), this.c(new Uint8Array([zp]), [])], [y]));
    return y;
  }
  dq(x: string, scale: number, zp: number): string {
    const y = this.id('dq');
    this.nodes.push(makeNode('DequantizeLinear', [x, this.c(new Float32Array([scale]), []), this.c(new Uint8Array([zp]), [])], [y]));
    return y;
  }
  op(type: string, inputs: string[], attrs: Record<string, any> = {}, outputs = 1, domain?: string): string[] {
    const outs = Array.from({ length: outputs }, () => this.id(type));
    this.nodes.push(makeNode(type, inputs, outs, attrs, undefined, domain));
    return outs;
  }
  i64(v: number[]) { return this.c(BigInt64Array.from(v.map(BigInt)), [v.length]); }
  model(inputs: In[], outputs: { name: string; shape: number[] }[]): Uint8Array {
    const m = makeModel({
      name: 'copy', node: this.nodes, initializer: this.inits,
      input: inputs.map((i) => makeValueInfo(i.name, DataType.FLOAT, i.shape)),
      output: outputs.map((o) => makeValueInfo(o.name, DataType.UINT8, o.shape)),
    }, 13);
    if (this.nodes.some((n) => n.domain === 'com.microsoft')) m.opsetImport!.push({ domain: 'com.microsoft', version: 1 });
    return encodeModel(m);
  }
}

interface Case {
  name: string;
  inputs: In[];
  /** Builds the graph on the quantized (then dequantized) inputs; returns its outputs with their quantization. */
  graph: (g: G, x: string[]) => { name: string; shape: number[]; scale: number; zp: number }[];
  /** The exact reference on the input bytes. */
  reference: (x: Nd[]) => Nd[];
  /** How many engine ops the copy family should take (not counting quantize and graph edges). */
  exactWithOrt?: boolean;
}

/** Inputs: random bytes, fed as the exact float values they quantize from. */
function inputBytes(rand: () => number, inp: In): { bytes: Nd; float: Float32Array } {
  const bytes = build(inp.shape, () => Math.floor(rand() * 256));
  const float = Float32Array.from(bytes.data, (q) => (q - inp.zp) * inp.scale);
  return { bytes, float };
}

/** NCHW inputs stay NCHW in the engine only when they are not 4-D; a 4-D input is quantized into NHWC storage. */
const A: In = { name: 'a', shape: [1, 3, 4, 5], scale: 1 / 16, zp: 128 };
const B: In = { name: 'b', shape: [1, 2, 4, 5], scale: 1 / 8, zp: 100 };
const P: In = { name: 'p', shape: [2, 3, 7], scale: 1 / 32, zp: 7 };

function concatRef(xs: Nd[], axis: number, ps: { scale: number; zp: number }[], out: { scale: number; zp: number }): Nd {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
  return build(shape, (ix) => {
    let k = ix[axis];
    let j = 0;
    while (k >= xs[j].shape[axis]) k -= xs[j++].shape[axis];
    const src = [...ix]; src[axis] = k;
    const v = at(xs[j], src);
    return ps[j].scale === out.scale && ps[j].zp === out.zp ? v : requant(v, ps[j].scale, ps[j].zp, out.scale, out.zp);
  });
}

function sliceRef(x: Nd, starts: number[], ends: number[], axes: number[], steps: number[]): Nd {
  const lo = x.shape.map(() => 0); const st = x.shape.map(() => 1); const count = [...x.shape];
  axes.forEach((a, i) => {
    const d = x.shape[a];
    const cl = (v: number, l: number, h: number) => Math.min(h, Math.max(l, v < 0 ? v + d : v));
    const s = steps[i] > 0 ? cl(starts[i], 0, d) : cl(starts[i], -1, d - 1);
    const e = steps[i] > 0 ? cl(ends[i], 0, d) : cl(ends[i], -1, d - 1);
    lo[a] = s; st[a] = steps[i];
    count[a] = Math.max(0, steps[i] > 0 ? Math.ceil((e - s) / steps[i]) : Math.ceil((s - e) / -steps[i]));
  });
  return build(count, (ix) => at(x, ix.map((v, k) => lo[k] + v * st[k])));
}

const transposeRef = (x: Nd, perm: number[]): Nd => build(perm.map((p) => x.shape[p]), (ix) => {
  const src = new Array(ix.length);
  perm.forEach((p, k) => { src[p] = ix[k]; });
  return at(x, src);
});

const CASES: Case[] = [
  ...[1, 2, 3].map((axis): Case => ({
    name: `Concat of NHWC maps along axis ${axis}, one input requantized`,
    inputs: [A, { ...B, shape: axis === 1 ? [1, 2, 4, 5] : axis === 2 ? [1, 3, 2, 5] : [1, 3, 4, 6] }],
    exactWithOrt: false,
    graph: (g, [a, b]) => {
      const [y] = g.op('Concat', [a, b], { axis });
      const shape = [...A.shape]; shape[axis] += axis === 1 ? 2 : axis === 2 ? 2 : 6;
      return [{ name: g.q(y, A.scale, A.zp), shape, scale: A.scale, zp: A.zp }];
    },
    reference: ([a, b]) => [concatRef([a, b], axis, [A, B], A)],
  })),
  {
    name: 'Concat of 3-D tensors (plain storage) at a third scale, both requantized',
    inputs: [P, { ...P, name: 'p2', scale: 1 / 4, zp: 200 }],
    graph: (g, [a, b]) => {
      const [y] = g.op('Concat', [a, b], { axis: -1 });
      return [{ name: g.q(y, 1 / 20, 90), shape: [2, 3, 14], scale: 1 / 20, zp: 90 }];
    },
    reference: ([a, b]) => [concatRef([a, b], 2, [P, { scale: 1 / 4, zp: 200 }], { scale: 1 / 20, zp: 90 })],
  },
  {
    name: 'channel padding as Concat with ConstantOfShape zeros',
    inputs: [A],
    exactWithOrt: true,
    graph: (g, [a]) => {
      const [z] = g.op('ConstantOfShape', [g.i64([1, 2, 4, 5])], { value: makeTensor('v', [1], new Float32Array([0])) });
      const [y] = g.op('Concat', [a, z], { axis: 1 });
      return [{ name: g.q(y, A.scale, A.zp), shape: [1, 5, 4, 5], scale: A.scale, zp: A.zp }];
    },
    reference: ([a]) => [build([1, 5, 4, 5], (ix) => (ix[1] < 3 ? at(a, ix) : A.zp))],
  },
  {
    name: 'Split of an NHWC map along channels [1, 2] and along W in equal halves... of 3-D',
    inputs: [A, P],
    exactWithOrt: true,
    graph: (g, [a, p]) => {
      const [s0, s1] = g.op('Split', [a, g.i64([1, 2])], { axis: 1 }, 2);
      const [t0, t1, t2] = g.op('Split', [p], { axis: 1 }, 3);
      return [
        { name: g.q(s0, A.scale, A.zp), shape: [1, 1, 4, 5], scale: A.scale, zp: A.zp },
        { name: g.q(s1, A.scale, A.zp), shape: [1, 2, 4, 5], scale: A.scale, zp: A.zp },
        { name: g.q(t0, P.scale, P.zp), shape: [2, 1, 7], scale: P.scale, zp: P.zp },
        { name: g.q(t1, P.scale, P.zp), shape: [2, 1, 7], scale: P.scale, zp: P.zp },
        { name: g.q(t2, P.scale, P.zp), shape: [2, 1, 7], scale: P.scale, zp: P.zp },
      ];
    },
    reference: ([a, p]) => [
      sliceRef(a, [0], [1], [1], [1]), sliceRef(a, [1], [3], [1], [1]),
      sliceRef(p, [0], [1], [1], [1]), sliceRef(p, [1], [2], [1], [1]), sliceRef(p, [2], [3], [1], [1]),
    ],
  },
  {
    name: 'Slice with negative steps and indices, on an NHWC map and a 3-D tensor',
    inputs: [A, P],
    exactWithOrt: true,
    graph: (g, [a, p]) => {
      const [y] = g.op('Slice', [a, g.i64([-1, 1, 0]), g.i64([-100, 4, 5]), g.i64([3, 2, 1]), g.i64([-2, 2, 2])]);
      const [z] = g.op('Slice', [p, g.i64([5, -1]), g.i64([0, -1000]), g.i64([2, -3]), g.i64([-1, -1])]);
      return [
        { name: g.q(y, A.scale, A.zp), shape: [1, 2, 2, 3], scale: A.scale, zp: A.zp },
        { name: g.q(z, P.scale, P.zp), shape: [2, 3, 5], scale: P.scale, zp: P.zp },
      ];
    },
    reference: ([a, p]) => [sliceRef(a, [-1, 1, 0], [-100, 4, 5], [3, 2, 1], [-2, 2, 2]), sliceRef(p, [5, -1], [0, -1000], [2, 0], [-1, -1])],
  },
  ...[[0, 2, 3, 1], [0, 3, 1, 2], [3, 2, 1, 0], [0, 1, 3, 2]].map((perm): Case => ({
    name: `Transpose [${perm}] of an NHWC map`,
    inputs: [A],
    exactWithOrt: true,
    graph: (g, [a]) => {
      const [y] = g.op('Transpose', [a], { perm });
      return [{ name: g.q(y, A.scale, A.zp), shape: perm.map((p) => A.shape[p]), scale: A.scale, zp: A.zp }];
    },
    reference: ([a]) => [transposeRef(a, perm)],
  })),
  {
    name: 'Transpose [2, 0, 1] of a 3-D tensor, then a requantizing Q',
    inputs: [P],
    graph: (g, [p]) => {
      const [y] = g.op('Transpose', [p], { perm: [2, 0, 1] });
      return [{ name: g.q(y, 1 / 10, 128), shape: [7, 2, 3], scale: 1 / 10, zp: 128 }];
    },
    reference: ([p]) => {
      const x = transposeRef(p, [2, 0, 1]);
      return [{ shape: x.shape, data: x.data.map((v) => requant(v, P.scale, P.zp, 1 / 10, 128)) }];
    },
  },
  {
    name: 'Pad (constant 0) of H, W and channels of an NHWC map; and a 3-D pad with a value on the grid',
    inputs: [A, P],
    exactWithOrt: true,
    graph: (g, [a, p]) => {
      const [y] = g.op('Pad', [a, g.i64([0, 1, 2, 0, 0, 2, 1, 3])]);
      const [z] = g.op('Pad', [p, g.i64([0, 1, 0, 1, 0, 2]), g.c(new Float32Array([0.5]), [])]);
      return [
        { name: g.q(y, A.scale, A.zp), shape: [1, 6, 7, 8], scale: A.scale, zp: A.zp },
        { name: g.q(z, P.scale, P.zp), shape: [3, 4, 9], scale: P.scale, zp: P.zp },
      ];
    },
    reference: ([a, p]) => [
      build([1, 6, 7, 8], ([n, c, h, w]) => (c >= 1 && c < 4 && h >= 2 && h < 6 && w < 5 ? at(a, [n, c - 1, h - 2, w]) : A.zp)),
      build([3, 4, 9], ([i, j, k]) => (i < 2 && j >= 1 && k < 7 ? at(p, [i, j - 1, k]) : P.zp + 16)),
    ],
  },
  ...(['reflect', 'edge'] as const).map((mode): Case => ({
    name: `Pad (${mode}) of H and W of an NHWC map and of a 3-D tensor`,
    inputs: [A, P],
    exactWithOrt: true,
    graph: (g, [a, p]) => {
      const [y] = g.op('Pad', [a, g.i64([0, 0, 2, 1, 0, 0, 3, 4])], { mode });
      const [z] = g.op('Pad', [p, g.i64([0, 2, 6, 0, 0, 3])], { mode });
      return [
        { name: g.q(y, A.scale, A.zp), shape: [1, 3, 9, 10], scale: A.scale, zp: A.zp },
        { name: g.q(z, P.scale, P.zp), shape: [2, 5, 16], scale: P.scale, zp: P.zp },
      ];
    },
    reference: ([a, p]) => {
      // Index into the source along one axis of size d for a padded position i (before = lo).
      const src = (i: number, lo: number, d: number) => {
        const k = i - lo;
        if (mode === 'edge') return Math.min(d - 1, Math.max(0, k));
        return k < 0 ? -k : k >= d ? 2 * (d - 1) - k : k;
      };
      return [
        build([1, 3, 9, 10], ([n, c, h, w]) => at(a, [n, c, src(h, 2, 4), src(w, 1, 5)])),
        build([2, 5, 16], ([i, j, k]) => at(p, [i, src(j, 2, 3), src(k, 6, 7)])),
      ];
    },
  })),
  ...(['Max', 'Min'] as const).map((op): Case => ({
    name: `${op} with broadcast (a [1,3,4,5], b [3,1,5] from a Slice), two scales into a third`,
    inputs: [A],
    graph: (g, [a]) => {
      const [s] = g.op('Slice', [a, g.i64([1]), g.i64([2]), g.i64([2])]);
      const [b] = g.op('Squeeze', [s, g.i64([0])]);
      const bq = g.dq(g.q(b, 1 / 12, 60), 1 / 12, 60);
      const [y] = g.op(op, [a, bq]);
      return [{ name: g.q(y, 1 / 10, 120), shape: [1, 3, 4, 5], scale: 1 / 10, zp: 120 }];
    },
    reference: ([a]) => {
      const b = build([1, 3, 1, 5], ([n, c, , w]) => requant(at(a, [n, c, 1, w]), A.scale, A.zp, 1 / 12, 60));
      const pick = op === 'Max' ? Math.max : Math.min;
      return [build([1, 3, 4, 5], ([n, c, h, w]) => pick(requant(at(a, [n, c, h, w]), A.scale, A.zp, 1 / 10, 120), requant(at(b, [n, c, 0, w]), 1 / 12, 60, 1 / 10, 120)))];
    },
  })),
  {
    name: 'QLinearConcat (com.microsoft) of two NHWC maps at different scales',
    inputs: [A, B],
    graph: (g, [, ]) => {
      const qa = g.q('a', A.scale, A.zp);
      const qb = g.q('b', B.scale, B.zp);
      const s = (v: number) => g.c(new Float32Array([v]), []);
      const z = (v: number) => g.c(new Uint8Array([v]), []);
      const [y] = g.op('QLinearConcat', [s(1 / 9), z(110), qa, s(A.scale), z(A.zp), qb, s(B.scale), z(B.zp)], { axis: 1 }, 1, 'com.microsoft');
      return [{ name: y, shape: [1, 5, 4, 5], scale: 1 / 9, zp: 110, raw: true } as never];
    },
    reference: ([a, b]) => [concatRef([a, b], 1, [A, B], { scale: 1 / 9, zp: 110 })],
  },
];

async function runCase(t: import("tap").Test, c: Case, seed: number): Promise<void> {
  const g = new G();
  const dqs = c.inputs.map((i) => g.dq(g.q(i.name, i.scale, i.zp), i.scale, i.zp));
  const outs = c.graph(g, dqs);
  const names = outs.map((_, i) => `y${i}`);
  outs.forEach((o, i) => g.nodes.push(makeNode('Identity', [o.name], [names[i]])));
  const bytes = g.model(c.inputs, outs.map((o, i) => ({ name: names[i], shape: o.shape })));
  const rand = mulberry32(seed);
  const feeds = c.inputs.map((i) => inputBytes(rand, i));
  const want = c.reference(feeds.map((f) => f.bytes));
  const native = NativeBackend.load(bytes, { name: c.name });
  const session = await ort.InferenceSession.create(bytes);
  try {
    const nin: Record<string, { dtype: 'float32'; shape: number[]; data: Float32Array }> = {};
    const oin: Record<string, ort.Tensor> = {};
    c.inputs.forEach((inp, k) => {
      nin[inp.name] = { dtype: 'float32', shape: inp.shape, data: feeds[k].float };
      oin[inp.name] = new ort.Tensor('float32', feeds[k].float, inp.shape);
    });
    const got = await native.run(nin);
    const ref = await session.run(oin);
    names.forEach((nm, k) => {
      const g8 = got[nm].data as Uint8Array;
      t.same(got[nm].shape, want[k].shape, `${c.name}: output ${k} shape [${want[k].shape}]`);
      let firstBad = -1;
      for (let i = 0; i < want[k].data.length && firstBad < 0; i++) if (g8[i] !== want[k].data[i]) firstBad = i;
      t.equal(firstBad, -1, `${c.name}: output ${k} equals the exact reference${firstBad >= 0 ? ` (byte ${firstBad}: ${g8[firstBad]} vs ${want[k].data[firstBad]})` : ''}`);
      const o = ref[nm].data as Uint8Array;
      let worst = 0;
      for (let i = 0; i < o.length; i++) worst = Math.max(worst, Math.abs(o[i] - g8[i]));
      if (c.exactWithOrt) t.equal(worst, 0, `${c.name}: output ${k} is ONNX Runtime's, byte for byte`);
      else t.ok(worst <= 1, `${c.name}: output ${k} within ${worst} step of ONNX Runtime`);
    });
    const all = want.flatMap((w) => Array.from(w.data));
    t.ok(new Set(all).size > Math.min(20, all.length / 3), `${c.name}: the reference is not constant (${new Set(all).size} distinct bytes)`);
  } finally {
    await native.dispose();
    await session.release();
  }
}

t.test('every op gives the exact reference bytes', async (t) => {
  for (const c of CASES) await runCase(t, c, 1234);
});

t.test('the ops compile to copy/max/min steps (no dequantize/requantize round trips)', async (t) => {
  const g = new G();
  const a = g.dq(g.q('a', A.scale, A.zp), A.scale, A.zp);
  const [tr] = g.op('Transpose', [a], { perm: [0, 2, 3, 1] });
  const [y] = g.op('Slice', [tr, g.i64([1]), g.i64([3]), g.i64([1])]);
  const q = g.q(y, A.scale, A.zp);
  g.nodes.push(makeNode('Identity', [q], ['y']));
  const plan = compileModel(decodeModel(g.model([A], [{ name: 'y', shape: [1, 2, 5, 3] }]))).plan;
  t.same(plan.ops.map((o) => o.op), ['quantize', 'copy'], 'NCHW->NHWC of an NHWC-stored map is free; the Slice is one copy');
});

t.test('malformed copy and max plans are refused without crashing', async (t) => {
  const g = new G();
  const a = g.dq(g.q('a', A.scale, A.zp), A.scale, A.zp);
  const b = g.dq(g.q('b', B.scale, B.zp), B.scale, B.zp);
  const [cc] = g.op('Concat', [a, b], { axis: 1 });
  const [sl] = g.op('Slice', [g.dq(g.q(cc, 1 / 16, 128), 1 / 16, 128), g.i64([4]), g.i64([0]), g.i64([3]), g.i64([-1])]);
  const [mx] = g.op('Max', [sl, g.c(new Float32Array([0.25]), [])]);
  g.nodes.push(makeNode('Identity', [g.q(mx, 1 / 16, 128)], ['y']));
  const base = compileModel(decodeModel(g.model([A, B], [{ name: 'y', shape: [1, 5, 4, 4] }])));
  const kinds = base.plan.ops.map((o) => o.op);
  t.ok(kinds.includes('copy') && kinds.includes('max'), `the plan has copy and max steps: ${kinds.join(', ')}`);
  const targets = base.plan.ops.map((o, i) => (o.op === 'copy' || o.op === 'max' ? i : -1)).filter((i) => i >= 0);
  const odd = [-1, 0, 1, 2, 3, 4, 5, 7, 100, 2 ** 31, -(2 ** 31), 1e12, 0.5, NaN, Infinity, 'x', null, [], {}];
  let refused = 0; let accepted = 0;
  const ins = [new Float32Array(60).fill(0.3), new Float32Array(40).fill(-0.2)];
  fc.assert(fc.property(fc.nat(10_000), fc.constantFrom(...odd), fc.boolean(), (pick, value, inList) => {
    const plan = structuredClone(base.plan) as unknown as Record<string, any>;
    const op = plan.ops[targets[pick % targets.length]];
    const keys = Object.keys(op).filter((k) => k !== 'op' && (inList ? Array.isArray(op[k]) : true));
    const key = keys[pick % keys.length];
    if (inList && Array.isArray(op[key]) && op[key].length) op[key][(pick >> 3) % op[key].length] = value;
    else op[key] = value;
    let engine;
    try {
      engine = createEngine(plan, base.weights);
    } catch (err) {
      refused++;
      if (!(err instanceof EdgeError) || err.code !== 'EDGE_NATIVE_PLAN_INVALID' || err.message.length < 30) throw new Error(`${key} = ${String(value)} refused badly: ${String(err)}`);
      return;
    }
    accepted++;
    try { engine.run(ins); } catch (err) { if (!(err instanceof Error)) throw err; } finally { engine.dispose(); }
  }), { numRuns: 500, seed: 77 });
  t.ok(refused > 250, `${refused} malformed plans refused with EDGE_NATIVE_PLAN_INVALID`);
  t.comment(`${accepted} mutations kept the plan valid and ran`);
  // Targeted: each bound the C++ side checks.
  const copyIdx = targets.find((i) => base.plan.ops[i].op === 'copy')!;
  const bad: [string, (op: any) => void, RegExp][] = [
    ['read past an input', (op) => { op.start[op.start.length - 1] = 99; }, /reads outside input dimension/],
    ['write past the output', (op) => { op.at[0] = 1; }, /writes outside output dimension/],
    ['a repeated dimension', (op) => { op.perm[1] = op.perm[0]; }, /perm must name every input dimension once/],
    ['a step that walks off the input', (op) => { op.step[op.step.length - 1] = 3; }, /reads outside input dimension/],
    ['gaps and no fill', (op) => { op.count[1] = 1; }, /do not cover the output/],
    ['no regions', (op) => { for (const k of ['inputs', 'count', 'start', 'step', 'at', 'perm', 'requant']) op[k] = []; }, /at least one input region|must hold/],
  ];
  for (const [what, mutate, message] of bad) {
    const plan = structuredClone(base.plan);
    mutate(plan.ops[copyIdx]);
    t.throws(() => createEngine(plan, base.weights), { code: 'EDGE_NATIVE_PLAN_INVALID', message }, what);
  }
});

t.test('QOperator form: Transpose, Slice and Concat straight on uint8 tensors', async (t) => {
  const g = new G();
  const [tr] = g.op('Transpose', ['x'], { perm: [1, 2, 0] });
  const [sl] = g.op('Slice', [tr, g.i64([-1]), g.i64([-100]), g.i64([1]), g.i64([-1])]);
  const [cat] = g.op('Concat', [sl, tr], { axis: 2 });
  g.nodes.push(makeNode('Identity', [cat], ['y']));
  const bytes = encodeModel(makeModel({
    name: 'qop', node: g.nodes, initializer: g.inits,
    input: [makeValueInfo('x', DataType.UINT8, [2, 3, 4])], output: [makeValueInfo('y', DataType.UINT8, [3, 4, 4])],
  }, 13));
  const rand = mulberry32(99);
  const x = build([2, 3, 4], () => Math.floor(rand() * 256));
  const tx = transposeRef(x, [1, 2, 0]);
  const want = concatRef([sliceRef(tx, [-1], [-100], [1], [-1]), tx], 2, [{ scale: 1, zp: 0 }, { scale: 1, zp: 0 }], { scale: 1, zp: 0 });
  const native = NativeBackend.load(bytes, { name: 'qop' });
  const session = await ort.InferenceSession.create(bytes);
  try {
    const got = (await native.run({ x: { dtype: 'uint8', shape: [2, 3, 4], data: x.data } })).y.data as Uint8Array;
    const ref = (await session.run({ x: new ort.Tensor('uint8', x.data, [2, 3, 4]) })).y.data as Uint8Array;
    t.same(Array.from(got), Array.from(want.data), 'the exact reference');
    t.same(Array.from(got), Array.from(ref), "ONNX Runtime's bytes");
  } finally {
    await native.dispose();
    await session.release();
  }
});

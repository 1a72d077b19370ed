// Constant folding at load: the shape arithmetic exporters leave in graphs (Shape -> Gather ->
// Unsqueeze -> Concat -> Reshape, Cast, ConstantOfShape, Constant nodes) is evaluated here once,
// since every shape in a plan is static; such nodes never reach the engine. And BatchNormalization:
// folded into the Conv before it (the per-channel factor goes into the weight scales, the shift
// into the bias), or when alone run as a depthwise 1x1 convolution with that scale and shift.
import { attr, dims, makeNode, tensorData, DataType, type TensorProto, type TypedArray } from '../../../onnx/model.js';
import type { Compiler } from './compiler.js';
import { kindName, numel, type Const, type ConstDeq, type Value } from './values.js';

/** Operators evaluated here when their inputs are constants (or, for Shape, of known shape). */
export const FOLDABLE = ['Constant', 'Shape', 'Gather', 'Cast', 'ConstantOfShape', 'Concat', 'Slice', 'Add', 'Sub', 'Mul', 'Div', 'Range', 'Equal', 'Where'];

/** Those with no int8 kernel: anything but constant inputs is refused. */
const CONST_ONLY = ['Gather', 'Cast', 'ConstantOfShape', 'Range', 'Equal', 'Where'];

const INTEGER = new Set<number>([DataType.INT64, DataType.INT32, DataType.INT16, DataType.INT8, DataType.UINT8, DataType.UINT16, DataType.BOOL]);

function nums(c: Const): number[] {
  return Array.from(c.data as ArrayLike<number | bigint>, Number);
}

function typed(values: number[], dtype: number): TypedArray {
  switch (dtype) {
    case DataType.INT64: return BigInt64Array.from(values.map((v) => BigInt(Math.trunc(v))));
    case DataType.INT32: return Int32Array.from(values);
    case DataType.INT8: return Int8Array.from(values);
    case DataType.UINT8: case DataType.BOOL: return Uint8Array.from(values);
    case DataType.INT16: return Int16Array.from(values);
    case DataType.UINT16: return Uint16Array.from(values);
    case DataType.DOUBLE: return Float64Array.from(values);
    case DataType.FLOAT: return Float32Array.from(values);
    default: throw new Error(`element type ${dtype}`);
  }
}

const make = (values: number[], shape: number[], dtype: number): Value => ({ k: 'const', c: { data: typed(values, dtype), shape, dtype } });

/** The logical shape of any value the compiler tracks (undefined for a pending result). */
function shapeOfValue(v: Value): number[] | undefined {
  switch (v.k) {
    case 'q': return v.q.shape;
    case 'dq': return v.d.q.shape;
    case 'f': return v.shape;
    case 'const': case 'cdq': return v.c.shape;
    default: return undefined;
  }
}

/** Row-major strides. */
const stridesOf = (s: number[]): number[] => s.map((_, i) => numel(s.slice(i + 1)));

/** NumPy-style broadcast of two constants through fn. */
function broadcast(a: Const, b: Const, fn: (x: number, y: number) => number, dtype: number): Value {
  const r = Math.max(a.shape.length, b.shape.length);
  const pa = [...Array(r - a.shape.length).fill(1), ...a.shape];
  const pb = [...Array(r - b.shape.length).fill(1), ...b.shape];
  const shape = pa.map((d, i) => {
    if (d !== pb[i] && d !== 1 && pb[i] !== 1) throw new Error(`cannot broadcast [${a.shape}] with [${b.shape}]`);
    return Math.max(d, pb[i]);
  });
  const sa = stridesOf(pa); const sb = stridesOf(pb); const so = stridesOf(shape);
  const x = nums(a); const y = nums(b);
  const out: number[] = [];
  for (let i = 0; i < numel(shape); i++) {
    let ia = 0; let ib = 0;
    for (let d = 0; d < r; d++) {
      const k = Math.floor(i / so[d]) % shape[d];
      if (pa[d] !== 1) ia += k * sa[d];
      if (pb[d] !== 1) ib += k * sb[d];
    }
    out.push(fn(x[ia], y[ib]));
  }
  return make(out, shape, dtype);
}

function constantNode(c: Compiler): Value {
  const a = c.node.attribute?.[0];
  const v = attr(c.node, 'value');
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const t = v as TensorProto;
    return { k: 'const', c: { data: tensorData(t), shape: dims(t), dtype: t.dataType ?? 0 } };
  }
  if (a?.name === 'value_float') return make([a.f ?? 0], [], DataType.FLOAT);
  if (a?.name === 'value_floats') return make(a.floats ?? [], [a.floats?.length ?? 0], DataType.FLOAT);
  if (a?.name === 'value_int') return make([Number(attr(c.node, 'value_int'))], [], DataType.INT64);
  if (a?.name === 'value_ints') {
    const v2 = attr(c.node, 'value_ints') as number[];
    return make(v2, [v2.length], DataType.INT64);
  }
  throw c.bad('only tensor, float and int Constant values are supported');
}

/**
 * Evaluates the node when it is a constant computation; returns false to let the op families
 * handle it (a Concat of activations, an Add of quantized tensors...).
 */
export function foldConstant(c: Compiler): boolean {
  const n = c.node;
  const op = n.opType ?? '';
  if ((n.domain ?? '') !== '' && n.domain !== 'ai.onnx') return false;
  if (!FOLDABLE.includes(op)) return false;
  if (op === 'Constant') {
    c.set(constantNode(c));
    return true;
  }
  const ins = (n.input ?? []).map((name) => (name ? c.get(name) : undefined));
  if (op === 'Shape') {
    const s = shapeOfValue(ins[0]!);
    if (!s) throw c.bad('the shape of a float result that is not quantized is not known here');
    const r = s.length;
    const clampAxis = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
    const start = clampAxis(Number(attr(n, 'start') ?? 0));
    const end = clampAxis(Number(attr(n, 'end') ?? r));
    const part = s.slice(start, end);
    c.set(make(part, [part.length], DataType.INT64));
    return true;
  }
  if (!ins.every((v) => v === undefined || v.k === 'const')) {
    if (CONST_ONLY.includes(op)) {
      const i = ins.findIndex((v) => v !== undefined && v.k !== 'const');
      throw c.bad(`runs only on constants (folded at load), and input ${i} is ${kindName(ins[i])}`);
    }
    return false;
  }
  const k = ins.map((v) => (v as { c: Const } | undefined)?.c);
  try {
    c.set(evaluate(c, op, k));
  } catch (err) {
    if (err instanceof Error && err.constructor === Error) throw c.bad(`cannot fold its constant inputs: ${err.message}`);
    throw err;
  }
  return true;
}

function evaluate(c: Compiler, op: string, k: (Const | undefined)[]): Value {
  const n = c.node;
  const [a, b] = k;
  switch (op) {
    case 'Cast': return make(nums(a!), a!.shape, Number(attr(n, 'to')));
    case 'ConstantOfShape': {
      const shape = nums(a!);
      const v = attr(n, 'value') as TensorProto | undefined;
      const fill = v ? tensorData(v) : new Float32Array([0]);
      const dtype = v?.dataType ?? DataType.FLOAT;
      return make(new Array(numel(shape)).fill(Number(fill[0])), shape, dtype);
    }
    case 'Gather': {
      const r = a!.shape.length;
      let axis = Number(attr(n, 'axis') ?? 0);
      if (axis < 0) axis += r;
      const idx = nums(b!).map((i) => (i < 0 ? i + a!.shape[axis] : i));
      if (idx.some((i) => i < 0 || i >= a!.shape[axis])) throw new Error(`index out of range for axis ${axis} of size ${a!.shape[axis]}`);
      const outer = numel(a!.shape.slice(0, axis));
      const inner = numel(a!.shape.slice(axis + 1));
      const x = nums(a!);
      const out: number[] = [];
      for (let o = 0; o < outer; o++) for (const i of idx) for (let j = 0; j < inner; j++) out.push(x[(o * a!.shape[axis] + i) * inner + j]);
      return make(out, [...a!.shape.slice(0, axis), ...b!.shape, ...a!.shape.slice(axis + 1)], a!.dtype);
    }
    case 'Concat': {
      const parts = k.filter((x): x is Const => !!x);
      const r = parts[0].shape.length;
      let axis = Number(attr(n, 'axis'));
      if (axis < 0) axis += r;
      const outer = numel(parts[0].shape.slice(0, axis));
      const out: number[] = [];
      for (let o = 0; o < outer; o++) {
        for (const p of parts) {
          const chunk = numel(p.shape.slice(axis));
          out.push(...nums(p).slice(o * chunk, (o + 1) * chunk));
        }
      }
      const shape = [...parts[0].shape];
      shape[axis] = parts.reduce((s, p) => s + p.shape[axis], 0);
      return make(out, shape, parts[0].dtype);
    }
    case 'Slice': {
      const r = a!.shape.length;
      const starts = nums(b!); const ends = nums(k[2]!);
      const axes = k[3] ? nums(k[3]).map((x) => (x < 0 ? x + r : x)) : starts.map((_, i) => i);
      const steps = k[4] ? nums(k[4]) : starts.map(() => 1);
      const lo = a!.shape.map(() => 0); const step = a!.shape.map(() => 1); const count = [...a!.shape];
      axes.forEach((ax, i) => {
        const d = a!.shape[ax];
        const st = steps[i];
        if (st === 0) throw new Error('a Slice step of 0');
        const clampIdx = (v: number, min: number, max: number) => Math.min(max, Math.max(min, v < 0 ? v + d : v));
        const s0 = st > 0 ? clampIdx(starts[i], 0, d) : clampIdx(starts[i], -1, d - 1);
        const e0 = st > 0 ? clampIdx(ends[i], 0, d) : clampIdx(ends[i], -1, d - 1);
        lo[ax] = s0; step[ax] = st;
        count[ax] = Math.max(0, st > 0 ? Math.ceil((e0 - s0) / st) : Math.ceil((s0 - e0) / -st));
      });
      const x = nums(a!); const sx = stridesOf(a!.shape); const so = stridesOf(count);
      const out: number[] = [];
      for (let i = 0; i < numel(count); i++) {
        let src = 0;
        for (let d = 0; d < r; d++) src += (lo[d] + (Math.floor(i / so[d]) % count[d]) * step[d]) * sx[d];
        out.push(x[src]);
      }
      return make(out, count, a!.dtype);
    }
    case 'Range': {
      const [s, l, d] = k.map((x) => nums(x!)[0]);
      const len = Math.max(0, Math.ceil((l - s) / d));
      return make(Array.from({ length: len }, (_, i) => s + i * d), [len], a!.dtype);
    }
    case 'Add': return broadcast(a!, b!, (x, y) => x + y, a!.dtype);
    case 'Sub': return broadcast(a!, b!, (x, y) => x - y, a!.dtype);
    case 'Mul': return broadcast(a!, b!, (x, y) => x * y, a!.dtype);
    case 'Div': return broadcast(a!, b!, (x, y) => (INTEGER.has(a!.dtype) ? Math.trunc(x / y) : x / y), a!.dtype);
    case 'Equal': return broadcast(a!, b!, (x, y) => (x === y ? 1 : 0), DataType.BOOL);
    case 'Where': {
      const [cond, x, y] = k as Const[];
      // NaN marks "take y" on the way (float64 holds it whatever x's type).
      const pick = broadcast(cond, x, (cv, xv) => (cv ? xv : NaN), DataType.DOUBLE);
      const pc = (pick as { c: Const }).c;
      return broadcast(pc, y, (p, yv) => (Number.isNaN(p) ? yv : p), x.dtype);
    }
    default: throw c.bad('not a constant computation');
  }
}

/**
 * BatchNormalization in inference mode: y = x * k + (beta - mean * k), k = gamma / sqrt(var + eps).
 * After a Conv (its pending result) the factor k goes into each output channel's weight scale
 * (sign into the weights) and the shift into the float bias; alone, it becomes a depthwise 1x1
 * convolution with weights +-1 and scales |k|.
 */
export function batchNorm(c: Compiler): void {
  const n = c.node;
  if ((n.output ?? []).filter(Boolean).length !== 1) throw c.bad('training mode (running mean/var outputs) is not supported');
  const x = c.input(0);
  const params = [1, 2, 3, 4].map((i) => c.constValue(i, ['scale', 'bias', 'mean', 'var'][i - 1]));
  const [gamma, beta, mean, variance] = params.map(nums);
  const channels = gamma.length;
  if (params.some((p) => numel(p.shape) !== channels)) throw c.bad('scale, bias, mean and var must have one value per channel');
  const eps = Number(attr(n, 'epsilon') ?? 1e-5);
  const factor = gamma.map((g, i) => g / Math.sqrt(variance[i] + eps));
  const shift = beta.map((b, i) => b - mean[i] * factor[i]);
  if (factor.some((f) => f === 0 || !Number.isFinite(f))) throw c.bad('a channel\'s scale is 0 or not finite');

  if (x?.k === 'pending' && x.p.kind === 'conv') {
    const p = x.p;
    if (p.w.shape[0] !== channels) throw c.bad(`${channels} channels after a Conv with ${p.w.shape[0]} outputs`);
    if (p.lo !== -Infinity || p.hi !== Infinity) throw c.bad('a BatchNormalization after a fused Relu/Clip cannot be folded');
    const w = scaleWeights(c, p.w, factor);
    // The Conv's bias as float (in its own scale), then shifted: b' = b * k + shift.
    const b0 = floatBias(c, p.b, channels, p.x.scale, p.w.scales);
    const b = Float32Array.from(b0.map((v, i) => v * factor[i] + shift[i]));
    return c.pending({ ...p, w, b: { k: 'const', c: { data: b, shape: [channels], dtype: DataType.FLOAT } } });
  }
  if (x?.k === 'dq') {
    if (x.d.q.shape.length !== 4 || x.d.q.shape[1] !== channels) throw c.bad(`alone, it runs on a 4D NCHW map with ${channels} channels (got [${x.d.q.shape}])`);
    const w: ConstDeq = {
      data: Int8Array.from(factor.map((f) => (f > 0 ? 1 : -1))), shape: [channels, 1, 1, 1], dtype: DataType.INT8,
      scales: factor.map(Math.abs), zps: factor.map(() => 0), axis: 0,
    };
    const conv = makeNode('Conv', [], [], { group: channels, kernel_shape: [1, 1] }, n.name ?? undefined);
    return c.pending({
      kind: 'conv', node: conv, x: x.d, w, lo: -Infinity, hi: Infinity,
      b: { k: 'const', c: { data: Float32Array.from(shift), shape: [channels], dtype: DataType.FLOAT } },
    });
  }
  throw c.bad('its input must be a Conv result or a dequantized 4D map');
}

/** Weights with channel c's scale times |k[c]| and its values negated where k[c] < 0. */
function scaleWeights(c: Compiler, w: ConstDeq, k: number[]): ConstDeq {
  const m = w.shape[0];
  const per = numel(w.shape) / m;
  const data = new Int8Array(numel(w.shape));
  const scales: number[] = [];
  for (let ch = 0; ch < m; ch++) {
    const s = w.scales.length === 1 ? w.scales[0] : w.scales[ch];
    const z = w.zps.length === 1 ? w.zps[0] : w.zps[ch];
    const sign = k[ch] < 0 ? -1 : 1;
    for (let i = 0; i < per; i++) {
      const v = sign * (Number(w.data[ch * per + i]) - z);
      if (v < -128 || v > 127) throw c.bad(`channel ${ch}: its weight ${v * sign} cannot be negated in int8 for the negative BatchNormalization scale`);
      data[ch * per + i] = v;
    }
    scales.push(s * Math.abs(k[ch]));
  }
  return { data, shape: w.shape, dtype: DataType.INT8, scales, zps: scales.map(() => 0), axis: 0 };
}

/** A Conv bias in float, whatever form it came in (absent, float, int32, dequantized int32). */
function floatBias(c: Compiler, b: Value | undefined, m: number, xScale: number, wScales: number[]): number[] {
  if (!b) return new Array(m).fill(0);
  if (b.k === 'cdq') {
    return Array.from({ length: m }, (_, ch) => (Number(b.c.data[ch]) - (b.c.zps.length === 1 ? b.c.zps[0] : b.c.zps[ch])) * (b.c.scales.length === 1 ? b.c.scales[0] : b.c.scales[ch]));
  }
  if (b.k === 'const' && b.c.dtype === DataType.FLOAT) return nums(b.c);
  if (b.k === 'const' && b.c.dtype === DataType.INT32) return nums(b.c).map((v, ch) => v * xScale * (wScales.length === 1 ? wScales[0] : wScales[ch]));
  throw c.bad('the Conv bias must be a float or int32 initializer, or a dequantized one');
}

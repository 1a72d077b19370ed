// QuantizeLinear/DequantizeLinear, pooling, quantized add/mul and LUT activations.
import { kernelAddon, type QuantArray } from './addon.js';
import * as v from './validate.js';

export interface QuantParams {
  scale: number | number[] | Float32Array;
  zeroPoint?: number | number[] | Int32Array;
  /** Shape of the tensor and the per-channel axis (when scale has several values). */
  shape: number[];
  axis?: number;
}

function layout(fn: string, p: QuantParams, count: number) {
  if (!Array.isArray(p.shape)) v.fail(fn, 'shape', 'an array of dimensions', p.shape);
  p.shape.forEach((d, i) => v.int(fn, `shape[${i}]`, d, 0));
  const n = p.shape.reduce((a, b) => a * b, 1);
  v.length(fn, 'x', { length: count }, n, `the product of shape [${p.shape.join(', ')}]`);
  const perChannel = typeof p.scale !== 'number' && (p.scale as ArrayLike<number>).length > 1;
  if (!perChannel) return { outer: 1, channels: 1, inner: n };
  const rank = p.shape.length;
  const axisIn = p.axis ?? 1;
  const axis = v.int(fn, 'axis', axisIn, -rank, rank - 1);
  const a = axis < 0 ? axis + rank : axis;
  return {
    outer: p.shape.slice(0, a).reduce((x, y) => x * y, 1),
    channels: p.shape[a],
    inner: p.shape.slice(a + 1).reduce((x, y) => x * y, 1),
  };
}

/** ONNX QuantizeLinear: saturate(round_half_even(x / scale) + zeroPoint). */
export function quantizeLinear(x: Float32Array, p: QuantParams, type: v.QuantType = 'uint8'): Uint8Array | Int8Array {
  const fn = 'quantizeLinear';
  if (!(x instanceof Float32Array)) v.fail(fn, 'x', 'a Float32Array', x);
  if (type !== 'uint8' && type !== 'int8') v.fail(fn, 'type', '"uint8" or "int8"', type);
  const l = layout(fn, p, x.length);
  const scales = v.scales(fn, 'scale', p.scale, l.channels);
  const zps = v.zeroPoints(fn, 'zeroPoint', p.zeroPoint ?? 0, scales.length, v.qmin(type), v.qmax(type));
  if (zps.length !== scales.length) v.fail(fn, 'zeroPoint', `${scales.length} value(s) like scale`, p.zeroPoint);
  const y = type === 'uint8' ? new Uint8Array(x.length) : new Int8Array(x.length);
  kernelAddon().kernelsQuantizeLinear(x, y, scales, zps, l.outer, l.channels, l.inner);
  return y;
}

/** ONNX DequantizeLinear: (x - zeroPoint) * scale. */
export function dequantizeLinear(x: QuantArray, p: QuantParams): Float32Array {
  const fn = 'dequantizeLinear';
  const q = v.quantArray(fn, 'x', x);
  const t = v.typeOf(q);
  const l = layout(fn, p, q.length);
  const scales = v.scales(fn, 'scale', p.scale, l.channels);
  const zps = v.zeroPoints(fn, 'zeroPoint', p.zeroPoint ?? 0, scales.length, v.qmin(t), v.qmax(t));
  if (zps.length !== scales.length) v.fail(fn, 'zeroPoint', `${scales.length} value(s) like scale`, p.zeroPoint);
  const y = new Float32Array(q.length);
  kernelAddon().kernelsDequantizeLinear(q, y, scales, zps, l.outer, l.channels, l.inner);
  return y;
}

export interface PoolGeometry {
  batch?: number;
  H: number;
  W: number;
  C: number;
  kernel: [number, number];
  strides?: [number, number];
  pads?: [number, number, number, number];
  dilations?: [number, number];
  countIncludePad?: boolean;
}

function poolShape(fn: string, g: PoolGeometry) {
  const two = (what: string, p: unknown, def: number[]) => {
    const x = (p ?? def) as unknown[];
    if (!Array.isArray(x) || x.length !== def.length) v.fail(fn, what, `${def.length} integers`, p);
    return x.map((e, i) => v.int(fn, `${what}[${i}]`, e, what === 'pads' ? 0 : 1));
  };
  const batch = v.int(fn, 'batch', g.batch ?? 1, 1), H = v.int(fn, 'H', g.H, 1), W = v.int(fn, 'W', g.W, 1), C = v.int(fn, 'C', g.C, 1);
  const k = two('kernel', g.kernel, [1, 1]), s = two('strides', g.strides, [1, 1]);
  const p = two('pads', g.pads, [0, 0, 0, 0]), d = two('dilations', g.dilations, [1, 1]);
  const outH = Math.floor((H + p[0] + p[2] - (d[0] * (k[0] - 1) + 1)) / s[0]) + 1;
  const outW = Math.floor((W + p[1] + p[3] - (d[1] * (k[1] - 1) + 1)) / s[1]) + 1;
  if (outH < 1 || outW < 1) v.fail(fn, 'kernel', `no larger than the padded input (${H}x${W})`, g.kernel);
  const shape = Int32Array.from([batch, H, W, C, k[0], k[1], s[0], s[1], p[0], p[1], p[2], p[3], d[0], d[1], g.countIncludePad ? 1 : 0, 0]);
  return { shape, inCount: batch * H * W * C, outCount: batch * outH * outW * C };
}

/** MaxPool on quantized NHWC values (input and output share scale and zero point). */
export function maxPool(x: QuantArray, g: PoolGeometry): Uint8Array | Int8Array {
  const fn = 'maxPool';
  const q = v.quantArray(fn, 'x', x);
  const s = poolShape(fn, g);
  v.length(fn, 'x', q, s.inCount, 'batch * H * W * C (NHWC)');
  const y = q instanceof Uint8Array ? new Uint8Array(s.outCount) : new Int8Array(s.outCount);
  kernelAddon().kernelsPool('max', q, y, s.shape, 1, 0, 1, 0);
  return y;
}

export interface Rescale {
  xScale: number;
  xZeroPoint?: number;
  yScale: number;
  yZeroPoint?: number;
}

/** QLinearAveragePool on NHWC values. */
export function avgPool(x: QuantArray, g: PoolGeometry, r: Rescale): Uint8Array | Int8Array {
  const fn = 'avgPool';
  const q = v.quantArray(fn, 'x', x);
  const t = v.typeOf(q);
  const s = poolShape(fn, g);
  v.length(fn, 'x', q, s.inCount, 'batch * H * W * C (NHWC)');
  const y = q instanceof Uint8Array ? new Uint8Array(s.outCount) : new Int8Array(s.outCount);
  kernelAddon().kernelsPool('avg', q, y, s.shape, v.scale(fn, 'xScale', r.xScale), v.zeroPoint(fn, 'xZeroPoint', r.xZeroPoint ?? 0, t),
    v.scale(fn, 'yScale', r.yScale), v.zeroPoint(fn, 'yZeroPoint', r.yZeroPoint ?? 0, t));
  return y;
}

/** QLinearGlobalAveragePool on NHWC values: one value per (batch, channel). */
export function globalAvgPool(x: QuantArray, g: { batch?: number; H: number; W: number; C: number }, r: Rescale): Uint8Array | Int8Array {
  return avgPool(x, { ...g, kernel: [g.H, g.W] }, r);
}

export interface EltwiseOptions {
  a: QuantArray;
  aScale: number;
  aZeroPoint?: number;
  /** Same length as a, one value per channel (the innermost axis), or one value. */
  b: QuantArray;
  bScale: number;
  bZeroPoint?: number;
  yScale: number;
  yZeroPoint?: number;
  /** Needed when b is per-channel. */
  channels?: number;
  clampMin?: number;
  clampMax?: number;
}

function eltwise(op: 'add' | 'mul', o: EltwiseOptions): Uint8Array | Int8Array {
  const fn = op === 'add' ? 'qadd' : 'qmul';
  const a = v.quantArray(fn, 'a', o.a), b = v.quantArray(fn, 'b', o.b);
  const t = v.typeOf(a);
  if (v.typeOf(b) !== t) v.fail(fn, 'b', `the same element type as a (${t})`, b);
  let broadcast = 0;
  let channels = 1;
  if (b.length === a.length) broadcast = 0;
  else if (b.length === 1) broadcast = 2;
  else {
    channels = v.int(fn, 'channels', o.channels ?? b.length, 1);
    if (b.length !== channels || a.length % channels !== 0) {
      v.fail(fn, 'b.length', `${a.length} (same as a), 1, or the channel count dividing a.length`, b.length);
    }
    broadcast = 1;
  }
  const lo = v.int(fn, 'clampMin', o.clampMin ?? v.qmin(t), v.qmin(t), v.qmax(t));
  const hi = v.int(fn, 'clampMax', o.clampMax ?? v.qmax(t), lo, v.qmax(t));
  const y = t === 'uint8' ? new Uint8Array(a.length) : new Int8Array(a.length);
  kernelAddon().kernelsEltwise(op, a, b, y, v.scale(fn, 'aScale', o.aScale), v.zeroPoint(fn, 'aZeroPoint', o.aZeroPoint ?? 0, t),
    v.scale(fn, 'bScale', o.bScale), v.zeroPoint(fn, 'bZeroPoint', o.bZeroPoint ?? 0, t),
    v.scale(fn, 'yScale', o.yScale), v.zeroPoint(fn, 'yZeroPoint', o.yZeroPoint ?? 0, t), broadcast, channels, lo, hi);
  return y;
}

/** QLinearAdd with broadcasting of b (full, per-channel or scalar). */
export const qadd = (o: EltwiseOptions): Uint8Array | Int8Array => eltwise('add', o);
/** QLinearMul with broadcasting of b (full, per-channel or scalar). */
export const qmul = (o: EltwiseOptions): Uint8Array | Int8Array => eltwise('mul', o);

export const ACTIVATIONS = ['relu', 'clip', 'hardsigmoid', 'hardswish', 'sigmoid', 'tanh', 'leakyrelu', 'identity'] as const;
export type ActivationName = (typeof ACTIVATIONS)[number];

export interface LutOptions {
  activation: ActivationName;
  /** Clip: min; HardSigmoid: alpha (0.2); LeakyRelu: alpha (0.01). */
  p0?: number;
  /** Clip: max; HardSigmoid: beta (0.5). */
  p1?: number;
  inType?: v.QuantType;
  inScale: number;
  inZeroPoint?: number;
  outType?: v.QuantType;
  outScale: number;
  outZeroPoint?: number;
}

/** The 256-entry table of an activation on quantized values (built once, at load). */
export function activationLut(o: LutOptions): Uint8Array {
  const fn = 'activationLut';
  const kind = ACTIVATIONS.indexOf(o.activation);
  if (kind < 0) v.fail(fn, 'activation', `one of ${ACTIVATIONS.join(', ')}`, o.activation);
  const it = o.inType ?? 'uint8', ot = o.outType ?? 'uint8';
  for (const [what, t] of [['inType', it], ['outType', ot]] as const) {
    if (t !== 'uint8' && t !== 'int8') v.fail(fn, what, '"uint8" or "int8"', t);
  }
  const defaults: Record<string, [number, number]> = { clip: [-Infinity, Infinity], hardsigmoid: [0.2, 0.5], leakyrelu: [0.01, 0] };
  const [d0, d1] = defaults[o.activation] ?? [0, 0];
  const p0 = o.p0 ?? d0, p1 = o.p1 ?? d1;
  for (const [what, p] of [['p0', p0], ['p1', p1]] as const) {
    if (typeof p !== 'number' || Number.isNaN(p)) v.fail(fn, what, 'a number', p);
  }
  if (o.activation === 'clip' && p0 > p1) v.fail(fn, 'p0 (clip min)', `<= p1 (${p1})`, p0);
  return kernelAddon().kernelsBuildLut(kind, p0, p1, it === 'int8' ? 1 : 0, v.scale(fn, 'inScale', o.inScale),
    v.zeroPoint(fn, 'inZeroPoint', o.inZeroPoint ?? 0, it), ot === 'int8' ? 1 : 0, v.scale(fn, 'outScale', o.outScale),
    v.zeroPoint(fn, 'outZeroPoint', o.outZeroPoint ?? 0, ot));
}

/** y[i] = table[x[i]] (int8 inputs index by their byte). */
export function applyLut(table: Uint8Array, x: QuantArray, outType: v.QuantType = 'uint8'): Uint8Array | Int8Array {
  const fn = 'applyLut';
  if (!(table instanceof Uint8Array) || table.length !== 256) v.fail(fn, 'table', 'a Uint8Array of 256 entries from activationLut()', table);
  const q = v.quantArray(fn, 'x', x);
  const y = outType === 'int8' ? new Int8Array(q.length) : new Uint8Array(q.length);
  kernelAddon().kernelsApplyLut(table, q, y);
  return y;
}

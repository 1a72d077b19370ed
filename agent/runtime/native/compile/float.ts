// The float-inside family: where int8 is the wrong precision, the op runs in float inside one
// engine step between a dequantize and a quantize (mixed precision, as XNNPACK and TFLite do),
// with u8 in the arena on both sides: Softmax, LayerNormalization and Resize
// (native/src/engine/steps_float.cc). Also here: the MatMul of two activations (attention;
// exact int32 sums, steps_qmatmul.cc) and Sub/Div, which reduce to ops that exist (a table for
// a scalar constant, an add of the negated operand otherwise).
import { attr, DataType } from '../../../onnx/model.js';
import type { Clamp } from '../plan.js';
import { quantizedClamp } from '../quant.js';
import type { Compiler } from './compiler.js';
import { storageShape, toNhwc, toPlain } from './layout.js';
import { lut } from './lut.js';
import { ints, kindName, numel, qdtype, type Deq, type LayerNormChain, type QTensor, type Value } from './values.js';

const f32 = Math.fround;

/** A float-inside result waiting for its QuantizeLinear; a float graph output cannot be one. */
function floatPending(c: Compiler, emit: (scale: number, zp: number, signed: boolean) => QTensor): void {
  if (c.graphOutputs.has(c.node.output![0])) {
    throw c.bad('its float result is a graph output; the engine keeps float only inside a step (quantize the result, or leave this op to ONNX Runtime)');
  }
  c.pending({ kind: 'float', node: c.node, emit });
}

/** The operand as a dequantized activation, with a message naming the op when it is not one. */
function activation(c: Compiler, i: number): Deq {
  const v = c.input(i);
  if (v?.k !== 'dq') throw c.bad(`input ${i} must come from DequantizeLinear (got ${kindName(v)})`);
  return v.d;
}

/** A constant as float values: a float initializer, or a DequantizeLinear of one. */
function floatConst(c: Compiler, v: Value | undefined, what: string): Float64Array {
  if (v?.k === 'const' && v.c.dtype === DataType.FLOAT) return Float64Array.from(v.c.data as Float32Array, Number);
  if (v?.k === 'cdq') {
    const k = v.c;
    const inner = numel(k.shape.slice(k.axis + 1));
    return Float64Array.from(k.data as ArrayLike<number>, (q, i) => {
      const ch = k.scales.length === 1 ? 0 : Math.floor(i / inner) % k.scales.length;
      return (Number(q) - k.zps[ch]) * k.scales[ch];
    });
  }
  throw c.bad(`${what} must be a float constant or a DequantizeLinear of one (got ${kindName(v)})`);
}

/** A single-valued constant operand (float or dequantized), else undefined. */
function scalarConst(v: Value | undefined): number | undefined {
  if (v?.k === 'const' && v.c.dtype === DataType.FLOAT && v.c.data.length === 1) return Number(v.c.data[0]);
  if (v?.k === 'cdq' && v.c.data.length === 1) return (Number(v.c.data[0]) - v.c.zps[0]) * v.c.scales[0];
  return undefined;
}

/**
 * The same real values negated, exactly: byte q becomes 255 - q and the zero point 255 - zp
 * (65535 - q and 65535 - zp for the u16 of W8A16).
 */
function negate(c: Compiler, d: Deq): Deq {
  const t = c.tensors[d.q.tensor];
  if (d.q.bits === 16) {
    if (t.constant !== undefined) {
      const neg = c.tensor('u16', t.shape);
      c.tensors[neg].constant = c.weight(Uint16Array.from(c.weights[t.constant] as Uint16Array, (q) => 65535 - q));
      return { q: { ...d.q, tensor: neg }, scale: d.scale, zp: 65535 - d.zp };
    }
    const table = Uint16Array.from({ length: 65536 }, (_, q) => 65535 - q);
    return { q: lut(c, d.q, table, false), scale: d.scale, zp: 65535 - d.zp };
  }
  if (t.constant !== undefined) {
    const bytes = Uint8Array.from(c.weights[t.constant] as Uint8Array, (q) => 255 - q);
    const neg = c.tensor('u8', t.shape);
    c.tensors[neg].constant = c.weight(bytes);
    return { q: { ...d.q, tensor: neg }, scale: d.scale, zp: 255 - d.zp };
  }
  const table = Uint8Array.from({ length: 256 }, (_, q) => 255 - q);
  return { q: lut(c, d.q, table, d.q.signed), scale: d.scale, zp: 255 - d.zp };
}

/**
 * Add, Mul, Sub and Div. A scalar constant operand makes the op a function of one quantized
 * value, i.e. a table (x - k, k - x, x / k, k / x, and Add/Mul by a plain float scalar, which
 * the eltwise kernel cannot take unquantized). Sub otherwise is Add of the exactly negated
 * operand. Returns false for Add/Mul that the eltwise family handles as they are.
 */
export function arithmetic(c: Compiler, op: string): boolean {
  if (layerNormStep(c, op)) return true;
  const a = c.input(0); const b = c.input(1);
  const ka = scalarConst(a); const kb = scalarConst(b);
  const fn = ((): ((x: number, k: number) => number) | undefined => {
    if (kb !== undefined && a?.k === 'dq') {
      if (op === 'Add') return (x, k) => x + k;
      if (op === 'Sub') return (x, k) => x - k;
      if (op === 'Mul') return (x, k) => x * k;
      return (x, k) => x / k;
    }
    if (ka !== undefined && b?.k === 'dq') {
      if (op === 'Add') return (x, k) => k + x;
      if (op === 'Sub') return (x, k) => k - x;
      if (op === 'Mul') return (x, k) => k * x;
      return (x, k) => k / x;
    }
    return undefined;
  })();
  if (fn) {
    // A quantized scalar on an Add/Mul stays with the eltwise kernel (already exact there).
    if ((op === 'Add' || op === 'Mul') && (a?.k === 'cdq' || b?.k === 'cdq')) return false;
    const k = (kb ?? ka)!;
    const x = a?.k === 'dq' && kb !== undefined ? a.d : (b as { d: Deq }).d;
    if (op === 'Div' && kb !== undefined && k === 0) throw c.bad('division by a constant zero');
    c.pending({ kind: 'lut', node: c.node, fn: (v) => fn(v, k), x });
    return true;
  }
  if (op === 'Add' || op === 'Mul') return false;
  if (op === 'Div') throw c.bad(`the divisor must be a single constant (got ${kindName(b)}${kb === undefined && b?.k === 'cdq' ? ' with more than one value' : ''}); a LayerNorm's division is fused with it`);
  c.pending({ kind: 'eltwise', node: c.node, op: 'add', a: c.deq(0), b: negate(c, c.deq(1)), lo: -Infinity, hi: Infinity });
  return true;
}

/** Softmax along one axis (opset 13: that axis; before 13: the input coerced to 2D at axis). */
export function softmax(c: Compiler): void {
  const x = activation(c, 0);
  const legacy = c.opset < 13;
  const r = x.q.shape.length;
  let axis = Number(attr(c.node, 'axis') ?? (legacy ? 1 : -1));
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) throw c.bad(`axis ${attr(c.node, 'axis')} is outside the input's ${r} dimensions`);
  floatPending(c, (scale, zp, signed) => {
    let q = x.q;
    let outer: number; let len: number; let inner: number;
    if (legacy || q.layout === 'flat-hwc') q = toPlain(c, q);
    const storage = storageShape(q.shape, q.layout);
    if (legacy) {
      outer = numel(q.shape.slice(0, axis)); len = numel(q.shape.slice(axis)); inner = 1;
    } else {
      // The axis in storage order (NHWC keeps the logical channel axis innermost).
      const perm = q.layout === 'nhwc' ? [0, 2, 3, 1] : q.shape.map((_, i) => i);
      const sa = perm.indexOf(axis);
      outer = numel(storage.slice(0, sa)); len = storage[sa]; inner = numel(storage.slice(sa + 1));
    }
    const out = c.tensor(qdtype(q), storage);
    c.ops.push({ op: 'softmax', input: q.tensor, output: out, outer, axis: len, inner, inputScale: x.scale, outputScale: scale, outputZeroPoint: zp });
    return { ...q, tensor: out, signed };
  });
}

/** LayerNormalization (opset 17) over the last axis, gamma and beta as float constants. */
export function layerNormalization(c: Compiler): void {
  const x = activation(c, 0);
  const r = x.q.shape.length;
  let axis = Number(attr(c.node, 'axis') ?? -1);
  if (axis < 0) axis += r;
  if (axis !== r - 1) throw c.bad(`only normalisation over the last axis is supported (axis ${attr(c.node, 'axis')} of ${r})`);
  if (c.node.output!.length > 1 && c.node.output!.slice(1).some((o) => o)) throw c.bad('the Mean and InvStdDev outputs are not supported');
  const len = x.q.shape[r - 1];
  const gamma = floatConst(c, c.input(1), 'Scale');
  const beta = c.node.input?.[2] ? floatConst(c, c.input(2), 'B') : new Float64Array(len);
  const epsilon = Number(attr(c.node, 'epsilon') ?? 1e-5);
  layerNorm(c, x, gamma, beta, epsilon);
}

/** The fused layer normalisation, pending until its QuantizeLinear (also for the decomposed chain). */
export function layerNorm(c: Compiler, x: Deq, gamma: Float64Array, beta: Float64Array, epsilon: number): void {
  const emit = layerNormEmitter(c, x, gamma, beta, epsilon);
  floatPending(c, emit);
}

function layerNormEmitter(c: Compiler, x: Deq, gamma: Float64Array, beta: Float64Array, epsilon: number): (scale: number, zp: number, signed: boolean) => QTensor {
  const len = x.q.shape[x.q.shape.length - 1];
  const per = (v: Float64Array, what: string): Float32Array => {
    if (v.length === len) return Float32Array.from(v);
    if (v.length === 1) return new Float32Array(len).fill(v[0]);
    throw c.bad(`${what} has ${v.length} values for a last axis of ${len}`);
  };
  const g = per(gamma, 'Scale'); const b = per(beta, 'B');
  if (!(epsilon >= 0) || !Number.isFinite(epsilon)) throw c.bad(`epsilon must be a non-negative number, got ${epsilon}`);
  return (scale, zp, signed) => {
    const q = toPlain(c, x.q);
    const out = c.tensor(qdtype(q), q.shape);
    c.ops.push({
      op: 'layernorm', input: q.tensor, output: out, gamma: c.weight(g), beta: c.weight(b), epsilon,
      inputScale: x.scale, inputZeroPoint: x.zp, outputScale: scale, outputZeroPoint: zp,
    });
    return { ...q, tensor: out, signed };
  };
}

// ---- the decomposed LayerNorm ----------------------------------------------------------------
// PyTorch and PaddleOCR (SVTR) export LayerNorm as
//   mean = ReduceMean(x); d = x - mean; var = ReduceMean(Pow(d, 2)); n = d / Sqrt(var + eps);
//   y = n * gamma + beta
// with x dequantized and y quantized and the chain itself float. Each step records how far the
// chain has got; a QuantizeLinear after the division (or after gamma, or beta) emits one fused
// layernorm step, so the float intermediates never exist in the engine.

function chainOf(v: Value | undefined): LayerNormChain | undefined {
  return v?.k === 'pending' && v.p.kind === 'float' ? v.p.chain : undefined;
}

function setChain(c: Compiler, chain: LayerNormChain): void {
  const done = chain.stage === 'normalised' || chain.stage === 'scaled' || chain.stage === 'affine';
  const n = chain.x.q.shape[chain.x.q.shape.length - 1];
  const emit = done
    ? layerNormEmitter(c, chain.x, chain.gamma ?? new Float64Array([1]), chain.beta ?? new Float64Array(n), chain.epsilon ?? 0)
    : (): QTensor => { throw c.bad(`a LayerNorm spelled out (ReduceMean, Sub, Pow, Sqrt, Div) is quantized in the middle, after its ${chain.stage} step`); };
  if (done && c.graphOutputs.has(c.node.output![0])) throw c.bad('its float result is a graph output; the engine keeps float only inside a step');
  c.set({ k: 'pending', p: { kind: 'float', node: c.node, emit, chain } });
}

/** ReduceMean over the last axis with keepdims (the LayerNorm chain's mean and variance). */
export function reduceMean(c: Compiler): void {
  const n = c.node;
  const x = c.input(0);
  const r = x?.k === 'dq' ? x.d.q.shape.length : chainOf(x)?.x.q.shape.length ?? 0;
  const axes = n.input?.[1] ? Array.from(c.constValue(1, 'ReduceMean axes').data as BigInt64Array, Number) : ints(attr(n, 'axes'), []);
  const lastOnly = axes.length === 1 && (axes[0] === -1 || axes[0] === r - 1);
  if (!lastOnly || Number(attr(n, 'keepdims') ?? 1) !== 1) {
    throw c.bad('only a ReduceMean over the last axis with keepdims, as part of a LayerNorm, is supported');
  }
  if (x?.k === 'dq') return setChain(c, { stage: 'mean', x: x.d });
  const ch = chainOf(x);
  if (ch?.stage === 'squared') return setChain(c, { ...ch, stage: 'variance' });
  throw c.bad(`only a ReduceMean of a dequantized tensor or of a squared difference (a LayerNorm) is supported (got ${kindName(x)})`);
}

/** Pow(d, 2) of the LayerNorm chain. */
export function pow(c: Compiler): void {
  const ch = chainOf(c.input(0));
  const e = scalarConst(c.input(1));
  if (ch?.stage === 'centred' && e === 2) return setChain(c, { ...ch, stage: 'squared' });
  throw c.bad('only Pow(x - mean, 2) inside a LayerNorm is supported');
}

/** Sqrt(var + eps) of the LayerNorm chain. */
export function sqrt(c: Compiler): void {
  const ch = chainOf(c.input(0));
  if (ch?.stage === 'varianceEps') return setChain(c, { ...ch, stage: 'std' });
  throw c.bad('only Sqrt(variance + epsilon) inside a LayerNorm is supported');
}

/** The chain's Sub, Mul (square or gamma), Add (epsilon or beta) and Div; false when not part of one. */
function layerNormStep(c: Compiler, op: string): boolean {
  const a = c.input(0); const b = c.input(1);
  const ca = chainOf(a); const cb = chainOf(b);
  if (!ca && !cb) return false;
  const same = (d: Deq, e: Deq): boolean => d.q.tensor === e.q.tensor && d.scale === e.scale && d.zp === e.zp;
  if (op === 'Sub' && a?.k === 'dq' && cb?.stage === 'mean' && same(a.d, cb.x)) return setChain(c, { ...cb, stage: 'centred' }), true;
  if (op === 'Mul' && ca?.stage === 'centred' && cb?.stage === 'centred' && same(ca.x, cb.x)) return setChain(c, { ...ca, stage: 'squared' }), true;
  if (op === 'Div' && ca?.stage === 'centred' && cb?.stage === 'std' && same(ca.x, cb.x)) return setChain(c, { ...ca, stage: 'normalised', epsilon: cb.epsilon }), true;
  const ch = ca ?? cb!;
  const other = ca ? b : a;
  const k = (what: string): Float64Array => floatConst(c, other, `the LayerNorm's ${what}`);
  if (op === 'Add' && ch.stage === 'variance') {
    const eps = scalarConst(other);
    if (eps === undefined) throw c.bad("the LayerNorm's epsilon must be a single constant");
    return setChain(c, { ...ch, stage: 'varianceEps', epsilon: eps }), true;
  }
  if (op === 'Mul' && ch.stage === 'normalised') return setChain(c, { ...ch, stage: 'scaled', gamma: k('gamma') }), true;
  if (op === 'Add' && (ch.stage === 'normalised' || ch.stage === 'scaled')) {
    return setChain(c, { ...ch, stage: 'affine', beta: k('beta') }), true;
  }
  throw c.bad(`${op} after a LayerNorm's ${ch.stage} step does not continue the LayerNorm pattern (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add)`);
}

/** ONNX's coordinate_transformation_mode: output coordinate to input coordinate along one axis. */
export function sourceCoordinate(mode: string, out: number, scale: number, inLen: number, outLen: number): number {
  switch (mode) {
    case 'half_pixel': return (out + 0.5) / scale - 0.5;
    case 'pytorch_half_pixel': return outLen > 1 ? (out + 0.5) / scale - 0.5 : 0;
    case 'align_corners': return outLen === 1 ? 0 : (out * (inLen - 1)) / (outLen - 1);
    case 'asymmetric': return out / scale;
    case 'tf_half_pixel_for_nn': return (out + 0.5) / scale;
    default: throw new Error(`coordinate_transformation_mode ${mode}`);
  }
}

/** ONNX's nearest_mode: the source index of a fractional coordinate. */
export function nearestIndex(mode: string, x: number): number {
  switch (mode) {
    case 'round_prefer_floor': return x - Math.floor(x) === 0.5 ? Math.floor(x) : Math.round(x);
    case 'round_prefer_ceil': return Math.round(x) === x - 0.5 ? Math.ceil(x) : Math.round(x);
    case 'floor': return Math.floor(x);
    case 'ceil': return Math.ceil(x);
    default: throw new Error(`nearest_mode ${mode}`);
  }
}

const COORDINATE_MODES = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn'];
const NEAREST_MODES = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];

/** Resize of a 4D NCHW map over H and W: nearest (all nearest modes) or linear (bilinear). */
export function resize(c: Compiler): void {
  const n = c.node;
  const x = activation(c, 0);
  if (x.q.shape.length !== 4) throw c.bad(`only 4D NCHW inputs are supported, got [${x.q.shape}]`);
  const mode = String(attr(n, 'mode') ?? 'nearest');
  if (mode !== 'nearest' && mode !== 'linear') throw c.bad(`mode '${mode}' is not supported (nearest or linear)`);
  const ctm = String(attr(n, 'coordinate_transformation_mode') ?? 'half_pixel');
  if (!COORDINATE_MODES.includes(ctm)) throw c.bad(`coordinate_transformation_mode '${ctm}' is not supported (${COORDINATE_MODES.join(', ')})`);
  const nm = String(attr(n, 'nearest_mode') ?? 'round_prefer_floor');
  if (mode === 'nearest' && !NEAREST_MODES.includes(nm)) throw c.bad(`nearest_mode '${nm}' is not supported (${NEAREST_MODES.join(', ')})`);
  if (Number(attr(n, 'antialias') ?? 0) !== 0) throw c.bad('antialias is not supported');
  if (attr(n, 'axes') !== undefined) throw c.bad('the axes attribute is not supported');
  const [N, C, H, W] = x.q.shape;
  // Inputs: X, roi, scales, sizes (opset 11+); X, scales (opset 10).
  const scalesAt = c.opset < 11 ? 1 : 2;
  const readConst = (i: number): number[] | undefined => {
    if (!n.input?.[i]) return undefined;
    const v = c.input(i);
    if (v?.k !== 'const') throw c.bad(`input ${i} (scales/sizes) must be a constant (got ${kindName(v)})`);
    return v.c.data.length ? Array.from(v.c.data as ArrayLike<number | bigint>, Number) : undefined;
  };
  const sizes = c.opset < 11 ? undefined : readConst(3);
  const scales = readConst(scalesAt);
  let OH: number; let OW: number; let sh: number; let sw: number;
  if (sizes) {
    if (sizes.length !== 4 || sizes[0] !== N || sizes[1] !== C) throw c.bad(`sizes [${sizes}] must keep batch and channels of [${x.q.shape}]`);
    [OH, OW] = [sizes[2], sizes[3]];
    sh = OH / H; sw = OW / W;
  } else if (scales) {
    if (scales.length !== 4 || scales[0] !== 1 || scales[1] !== 1) throw c.bad(`scales [${scales}] must be 1 for batch and channels`);
    [sh, sw] = [scales[2], scales[3]];
    OH = Math.floor(H * sh); OW = Math.floor(W * sw);
  } else {
    throw c.bad('needs constant scales or sizes');
  }
  if (!(OH >= 1 && OW >= 1 && sh > 0 && sw > 0)) throw c.bad(`output size ${OH}x${OW} is empty`);
  const axis = (inLen: number, outLen: number, scale: number): { from: number[]; to: number[]; w: Float32Array } => {
    const from: number[] = []; const to: number[] = []; const w = new Float32Array(outLen);
    const clamp = (i: number): number => Math.min(Math.max(i, 0), inLen - 1);
    for (let o = 0; o < outLen; o++) {
      const s = sourceCoordinate(ctm, o, scale, inLen, outLen);
      if (mode === 'nearest') {
        from.push(clamp(nearestIndex(nm, s)));
        continue;
      }
      const s0 = Math.floor(s);
      from.push(clamp(s0)); to.push(clamp(s0 + 1)); w[o] = f32(Math.min(Math.max(s - s0, 0), 1));
    }
    return { from, to, w };
  };
  const rows = axis(H, OH, sh); const cols = axis(W, OW, sw);
  floatPending(c, (scale, zp, signed) => {
    const q = toNhwc(c, x.q);
    const out = c.tensor(qdtype(q), [N, OH, OW, C]);
    const linear = mode === 'linear';
    c.ops.push({
      op: 'resize', input: q.tensor, output: out, linear, rowsFrom: rows.from, colsFrom: cols.from,
      ...(linear ? { rowsTo: rows.to, colsTo: cols.to, rowWeights: c.weight(rows.w), colWeights: c.weight(cols.w) } : {}),
      inputScale: x.scale, inputZeroPoint: x.zp, outputScale: scale, outputZeroPoint: zp,
    });
    return { tensor: out, shape: [N, C, OH, OW], layout: 'nhwc', signed, ...(q.bits ? { bits: q.bits } : {}) };
  });
}

/** MatMul of two activations ([..., M, K] x [..., K, N]; batch dims equal, or one side unbatched). */
export function matmulOfActivations(c: Compiler): void {
  const a = activation(c, 0); const b = activation(c, 1);
  const sa = a.q.shape; const sb = b.q.shape;
  if (sa.length < 2 || sb.length < 2) throw c.bad(`both operands need at least 2 dimensions, got [${sa}] and [${sb}]`);
  const [M, K] = sa.slice(-2); const [K2, N] = sb.slice(-2);
  if (K !== K2) throw c.bad(`inner dimensions differ: [${sa}] x [${sb}]`);
  const ba = sa.slice(0, -2); const bb = sb.slice(0, -2);
  const na = numel(ba); const nb = numel(bb);
  const sameBatch = ba.length === bb.length && ba.every((d, i) => d === bb[i]);
  if (!sameBatch && na !== 1 && nb !== 1) throw c.bad(`batch dimensions [${ba}] and [${bb}] must agree (or one side has none)`);
  const batchShape = na >= nb ? ba : bb;
  // W8A16: both operands u16 (exact int64 sums in the engine).
  const bits = a.q.bits ?? 8;
  if (bits !== (b.q.bits ?? 8)) throw c.bad('multiplies an 8-bit and a 16-bit activation (quantize both to one width)');
  if (K > 33025 && bits === 8) throw c.bad(`K = ${K} exceeds 33025, where exact int32 sums could overflow`);
  floatPending(c, (scale, zp, signed) => {
    const qa = toPlain(c, a.q); const qb = toPlain(c, b.q);
    const batch = Math.max(na, nb);
    const out = c.tensor(qdtype(qa), [...batchShape, M, N]);
    c.ops.push({
      op: 'qmatmul', a: qa.tensor, b: qb.tensor, output: out, batch, M, K, N,
      aBroadcast: na === 1 && batch > 1, bBroadcast: nb === 1 && batch > 1,
      aZeroPoint: a.zp, bZeroPoint: b.zp,
      multiplier: f32(f32(f32(a.scale) * f32(b.scale)) / f32(scale)), outputZeroPoint: zp,
      clamp: quantizedClamp(-Infinity, Infinity, scale, zp, bits) as Clamp,
    });
    return { tensor: out, shape: [...batchShape, M, N], layout: 'plain', signed, ...(bits === 16 ? { bits } : {}) } satisfies QTensor;
  });
}

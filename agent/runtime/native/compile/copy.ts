// The copy family: Concat, Split, Slice, Transpose, Pad become one 'copy' op each (regions of
// inputs written into an output, requantized on the fly where a Concat input's scale differs
// from the output's), and Max/Min one 'max'/'min' op. Everything works in storage order: an
// NHWC map stays NHWC through a channel Concat, a Slice or a Pad (logical axis a is storage
// axis NHWC_AXIS[a]), and a Transpose of one is a single region with the composed permutation
// (none at all when it only reveals the NHWC bytes as NHWC).
import { attr, DataType } from '../../../onnx/model.js';
import type { CopyOp } from '../plan.js';
import { clampU8, roundHalfEven } from '../quant.js';
import type { Compiler } from './compiler.js';
import { constOperand } from './eltwise.js';
import { requantize } from './lut.js';
import { storageShape, toPlain } from './layout.js';
import { kindName, qdtype, type Const, type Deq, type Layout, type QTensor, type Value } from './values.js';

const NHWC_AXIS = [0, 3, 1, 2];
const f32 = Math.fround;

/** Logical axis a of a tensor in this layout, as a storage axis. */
const storageAxis = (layout: Layout, a: number): number => (layout === 'nhwc' ? NHWC_AXIS[a] : a);

/** A data operand: a quantized tensor, with its scale when it is a dequantized one. */
interface Operand { q: QTensor; scale?: number; zp?: number }

function operand(c: Compiler, i: number): Operand {
  const v = c.input(i);
  if (v?.k === 'q') return { q: v.q.layout === 'flat-hwc' ? toPlain(c, v.q) : v.q };
  if (v?.k === 'dq') return { q: v.d.q.layout === 'flat-hwc' ? toPlain(c, v.d.q) : v.d.q, scale: v.d.scale, zp: v.d.zp };
  if (v?.k === 'cdq') {
    const d = constOperand(c, v.c);
    return { q: d.q, scale: d.scale, zp: d.zp };
  }
  throw c.bad(`input ${i} must be a quantized tensor or come from DequantizeLinear (got ${kindName(v)})`);
}

/** The result: the same kind of value the input was (moved bytes keep their scale and width). */
function result(c: Compiler, x: Operand, q: QTensor, i = 0): void {
  if (c.tensors[q.tensor].dtype === 'u16') q = { ...q, bits: 16 };
  if (x.scale === undefined) c.set({ k: 'q', q }, i);
  else c.set({ k: 'dq', d: { q, scale: x.scale, zp: x.zp! } }, i);
}

interface Region { input: number; count: number[]; start: number[]; step: number[]; at: number[]; perm: number[]; requant?: { scale: number; zp: number } }

function copyOp(c: Compiler, storage: number[], regions: Region[], out?: { scale: number; zp: number }, fill?: number): number {
  // u16 tensors (W8A16) move as bytes: each is seen as u8 with one more, innermost, dimension
  // of 2 bytes that every region copies whole, in order.
  const wide = regions.map((r) => c.tensors[r.input].dtype === 'u16');
  if (wide.some(Boolean)) {
    if (!wide.every(Boolean) || regions.some((r) => r.requant) || fill !== undefined) {
      throw c.bad('16-bit activations (W8A16) are moved only as they are (no change of scale, no padding value, no 8-bit operand); ONNX Runtime runs this one');
    }
    const bytes = regions.map((r): Region => {
      const rank = c.tensors[r.input].shape.length;
      return {
        input: c.tensor('u8', [...c.tensors[r.input].shape, 2], r.input),
        count: [...r.count, 2], start: [...r.start, 0], step: [...r.step, 1], at: [...r.at, 0], perm: [...r.perm, rank],
      };
    });
    return c.tensor('u16', storage, copyOp(c, [...storage, 2], bytes));
  }
  const output = c.tensor('u8', storage);
  const op: CopyOp = {
    op: 'copy', output, inputs: regions.map((r) => r.input),
    count: regions.flatMap((r) => r.count), start: regions.flatMap((r) => r.start), step: regions.flatMap((r) => r.step),
    at: regions.flatMap((r) => r.at), perm: regions.flatMap((r) => r.perm), requant: regions.map((r) => (r.requant ? 1 : 0)),
  };
  if (regions.some((r) => r.requant)) {
    op.inScales = regions.map((r) => r.requant?.scale ?? 1);
    op.inZeroPoints = regions.map((r) => r.requant?.zp ?? 0);
    op.outputScale = out!.scale;
    op.outputZeroPoint = out!.zp;
  }
  if (fill !== undefined) op.fill = fill;
  c.ops.push(op);
  return output;
}

/** A whole tensor as one region written at `at` (identity order, step 1). */
function whole(q: QTensor, at: number[]): Region {
  const s = storageShape(q.shape, q.layout);
  return { input: q.tensor, count: s, start: s.map(() => 0), step: s.map(() => 1), at, perm: s.map((_, i) => i) };
}

const int64s = (k: Const): number[] => Array.from(k.data as ArrayLike<number | bigint>, Number);

function axisOf(c: Compiler, rank: number, d = 0): number {
  let a = Number(attr(c.node, 'axis') ?? d);
  if (a < 0) a += rank;
  if (a < 0 || a >= rank) throw c.bad(`axis ${attr(c.node, 'axis')} is outside rank ${rank}`);
  return a;
}

export function transpose(c: Compiler): void {
  const x = operand(c, 0);
  const q = x.q;
  const r = q.shape.length;
  const perm = (attr(c.node, 'perm') as number[] | undefined) ?? q.shape.map((_, i) => r - 1 - i);
  if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw c.bad(`perm [${perm}] is not a permutation of ${r} dimensions`);
  const shape = perm.map((p) => q.shape[p]);
  // Output dimension d reads logical input dimension perm[d], stored at storage axis map(perm[d]).
  const sperm = perm.map((p) => storageAxis(q.layout, p));
  const storage = storageShape(q.shape, q.layout);
  // Dimensions of size 1 do not move bytes: compare the order of the others only.
  const moving = sperm.filter((p) => storage[p] !== 1);
  if (moving.every((p, i) => i === 0 || p > moving[i - 1])) return result(c, x, { tensor: c.tensor(qdtype(q), shape, q.tensor), shape, layout: 'plain', signed: q.signed });
  const out = copyOp(c, shape, [{ input: q.tensor, count: shape, start: shape.map(() => 0), step: shape.map(() => 1), at: shape.map(() => 0), perm: sperm }]);
  result(c, x, { tensor: out, shape, layout: 'plain', signed: q.signed });
}

/** Start, count and step of ONNX Slice along one dimension of size d (clamped as ONNX says). */
export function sliceDim(start: number, end: number, step: number, d: number): { start: number; count: number } {
  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v < 0 ? v + d : v));
  const s = step > 0 ? clamp(start, 0, d) : clamp(start, -1, d - 1);
  const e = step > 0 ? clamp(end, 0, d) : clamp(end, -1, d - 1);
  const count = Math.max(0, step > 0 ? Math.ceil((e - s) / step) : Math.ceil((s - e) / -step));
  return { start: s, count };
}

export function slice(c: Compiler): void {
  const x = operand(c, 0);
  const q = x.q;
  const r = q.shape.length;
  const starts = int64s(c.constValue(1, 'Slice starts'));
  const ends = int64s(c.constValue(2, 'Slice ends'));
  const axes = c.node.input?.[3] ? int64s(c.constValue(3, 'Slice axes')).map((a) => (a < 0 ? a + r : a)) : starts.map((_, i) => i);
  const steps = c.node.input?.[4] ? int64s(c.constValue(4, 'Slice steps')) : starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) throw c.bad('starts, ends, axes and steps differ in length');
  const storage = storageShape(q.shape, q.layout);
  const start = storage.map(() => 0); const step = storage.map(() => 1); const count = [...storage];
  const shape = [...q.shape];
  axes.forEach((a, i) => {
    if (a < 0 || a >= r) throw c.bad(`axis ${axes[i]} is outside rank ${r}`);
    if (steps[i] === 0) throw c.bad('a step of 0');
    const s = sliceDim(starts[i], ends[i], steps[i], q.shape[a]);
    if (s.count === 0) throw c.bad(`the slice of axis ${a} is empty`);
    const sa = storageAxis(q.layout, a);
    start[sa] = s.start; step[sa] = steps[i]; count[sa] = s.count; shape[a] = s.count;
  });
  const out = copyOp(c, count, [{ input: q.tensor, count, start, step, at: count.map(() => 0), perm: count.map((_, i) => i) }]);
  result(c, x, { tensor: out, shape, layout: q.layout, signed: q.signed });
}

export function split(c: Compiler): void {
  const x = operand(c, 0);
  const q = x.q;
  const a = axisOf(c, q.shape.length);
  const outs = (c.node.output ?? []).length;
  let sizes: number[];
  if (c.node.input?.[1]) sizes = int64s(c.constValue(1, 'Split sizes'));
  else if (attr(c.node, 'split')) sizes = attr(c.node, 'split') as number[];
  else {
    const each = Math.ceil(q.shape[a] / outs);
    sizes = Array.from({ length: outs }, (_, i) => Math.min(each, q.shape[a] - i * each));
  }
  if (sizes.length !== outs || sizes.reduce((s, v) => s + v, 0) !== q.shape[a] || sizes.some((v) => v < 1)) {
    throw c.bad(`split sizes [${sizes}] do not cut axis ${a} of size ${q.shape[a]} into ${outs} non-empty parts`);
  }
  const storage = storageShape(q.shape, q.layout);
  const sa = storageAxis(q.layout, a);
  let offset = 0;
  sizes.forEach((n, i) => {
    const count = [...storage]; count[sa] = n;
    const start = storage.map(() => 0); start[sa] = offset;
    const out = copyOp(c, count, [{ input: q.tensor, count, start, step: count.map(() => 1), at: count.map(() => 0), perm: count.map((_, d) => d) }]);
    const shape = [...q.shape]; shape[a] = n;
    result(c, x, { tensor: out, shape, layout: q.layout, signed: q.signed }, i);
    offset += n;
  });
}

export function pad(c: Compiler): void {
  const x = operand(c, 0);
  const q = x.q;
  const r = q.shape.length;
  const mode = String(attr(c.node, 'mode') ?? 'constant');
  if (!['constant', 'reflect', 'edge'].includes(mode)) throw c.bad(`mode '${mode}' is not supported (constant, reflect or edge)`);
  const pads = int64s(c.constValue(1, 'Pad pads'));
  const axes = c.node.input?.[3] ? int64s(c.constValue(3, 'Pad axes')).map((a) => (a < 0 ? a + r : a)) : q.shape.map((_, i) => i);
  if (pads.length !== 2 * axes.length) throw c.bad(`pads holds ${pads.length} values for ${axes.length} axes`);
  if (pads.some((p) => p < 0)) throw c.bad('negative pads (cropping) are not supported');
  if (mode !== 'constant') return c.set(x.scale === undefined ? { k: 'q', q: padCopies(c, q, axes, pads, mode) } : { k: 'dq', d: { q: padCopies(c, q, axes, pads, mode), scale: x.scale, zp: x.zp! } });
  const value = c.node.input?.[2] ? Number(c.constValue(2, 'Pad constant value').data[0]) : 0;
  if (x.scale === undefined && value !== 0) throw c.bad('a non-zero pad value on a quantized tensor needs its scale (QDQ form)');
  // The pad value in the input's quantization (0 is the zero point itself, always exact).
  const fill = x.scale === undefined ? (q.signed ? 128 : 0) : clampU8(roundHalfEven(f32(value / x.scale)) + x.zp!);
  const shape = [...q.shape];
  const before = q.shape.map(() => 0);
  axes.forEach((a, i) => {
    before[a] = pads[i];
    shape[a] += pads[i] + pads[i + axes.length];
  });
  const storage = storageShape(shape, q.layout);
  const at = storageShape(before, q.layout);
  const out = copyOp(c, storage, [whole(q, at)], undefined, fill);
  result(c, x, { tensor: out, shape, layout: q.layout, signed: q.signed });
}

/**
 * Reflect and edge padding, one axis at a time: each padded axis is one copy of three regions
 * (the mirrored or repeated border before, the input, the border after). A step of -1 reads the
 * mirror image, a step of 0 repeats the edge.
 */
function padCopies(c: Compiler, q: QTensor, axes: number[], pads: number[], mode: string): QTensor {
  let cur = q;
  axes.forEach((a, i) => {
    const lo = pads[i]; const hi = pads[i + axes.length];
    if (lo === 0 && hi === 0) return;
    const d = cur.shape[a];
    if (mode === 'reflect' && (lo >= d || hi >= d)) throw c.bad(`reflect padding of ${Math.max(lo, hi)} needs axis ${a} longer than that (it has ${d})`);
    const shape = [...cur.shape]; shape[a] = d + lo + hi;
    const storage = storageShape(cur.shape, cur.layout);
    const sa = storageAxis(cur.layout, a);
    const region = (count: number, start: number, step: number, at: number): Region => {
      const r = whole(cur, storage.map(() => 0));
      r.count = [...storage]; r.count[sa] = count;
      r.start = storage.map(() => 0); r.start[sa] = start;
      r.step = storage.map(() => 1); r.step[sa] = step;
      r.at[sa] = at;
      return r;
    };
    const regions: Region[] = [];
    if (lo) regions.push(mode === 'reflect' ? region(lo, lo, -1, 0) : region(lo, 0, 0, 0));
    regions.push(region(d, 0, 1, lo));
    if (hi) regions.push(mode === 'reflect' ? region(hi, d - 2, -1, lo + d) : region(hi, d - 1, 0, lo + d));
    const out = copyOp(c, storageShape(shape, cur.layout), regions);
    cur = { tensor: out, shape, layout: cur.layout, signed: cur.signed };
  });
  return cur;
}

/** A float constant quantized at the output's scale (the ConstantOfShape zeros of a channel pad). */
function floatConst(c: Compiler, k: Const, scale: number, zp: number): QTensor {
  const bytes = new Uint8Array(k.data.length);
  for (let i = 0; i < bytes.length; i++) bytes[i] = clampU8(roundHalfEven(f32(Number(k.data[i]) / scale)) + zp);
  // A scalar is stored as one element (the engine's tensors have rank 1 to 6).
  const shape = k.shape.length ? k.shape : [1];
  const t = c.tensor('u8', shape);
  c.tensors[t].constant = c.weight(bytes);
  return { tensor: t, shape, layout: 'plain', signed: false };
}

type Part = { k: 'op'; d: Operand } | { k: 'float'; c: Const };

function parts(c: Compiler, from: number, every = 1): Part[] {
  const out: Part[] = [];
  for (let i = from; i < (c.node.input ?? []).length; i += every) {
    const v: Value | undefined = c.input(i);
    if (v?.k === 'const' && v.c.dtype === DataType.FLOAT) out.push({ k: 'float', c: v.c });
    else out.push({ k: 'op', d: operand(c, i) });
  }
  return out;
}

function concatEmit(c: Compiler, ps: Part[], axis: number, scale: number, zp: number, signed: boolean): QTensor {
  let qs: Deq[] = ps.map((p) => (p.k === 'op'
    ? { q: p.d.q, scale: p.d.scale ?? scale, zp: p.d.zp ?? zp }
    : { q: floatConst(c, p.c, scale, zp), scale, zp }));
  const r = qs[0].q.shape.length;
  if (qs.some((d) => d.q.shape.length !== r || d.q.shape.some((v, i) => i !== axis && v !== qs[0].q.shape[i]))) {
    throw c.bad(`inputs [${qs.map((d) => `[${d.q.shape}]`).join(', ')}] differ outside axis ${axis}`);
  }
  const layout: Layout = qs.every((d) => d.q.layout === 'nhwc') ? 'nhwc' : 'plain';
  if (layout === 'plain') qs = qs.map((d) => ({ ...d, q: toPlain(c, d.q) }));
  // u16 inputs (W8A16) move only as they are: one at another scale is requantized first (a table).
  qs = qs.map((d) => (d.q.bits === 16 && (d.scale !== scale || d.zp !== zp) ? { q: requantize(c, d, scale, zp, signed), scale, zp } : d));
  const shape = [...qs[0].q.shape];
  shape[axis] = qs.reduce((s, d) => s + d.q.shape[axis], 0);
  const sa = storageAxis(layout, axis);
  let offset = 0;
  const regions = qs.map((d) => {
    const at = storageShape(shape, layout).map(() => 0);
    at[sa] = offset;
    offset += d.q.shape[axis];
    const reg = whole(d.q, at);
    if (d.scale !== scale || d.zp !== zp) reg.requant = { scale: d.scale, zp: d.zp };
    return reg;
  });
  const out = copyOp(c, storageShape(shape, layout), regions, { scale, zp });
  return { tensor: out, shape, layout, signed, ...(c.tensors[out].dtype === 'u16' ? { bits: 16 as const } : {}) };
}

export function concat(c: Compiler): void {
  const ps = parts(c, 0);
  const first = ps.find((p): p is { k: 'op'; d: Operand } => p.k === 'op')!;
  const axis = axisOf(c, first.d.q.shape.length);
  const node = c.node;
  // Quantized tensors without scales (QOperator form): a plain byte concatenation.
  if (ps.every((p) => p.k === 'op' && p.d.scale === undefined)) {
    return c.set({ k: 'q', q: concatEmit(c, ps, axis, 1, 0, first.d.q.signed) });
  }
  c.pending({ kind: 'deferred', node, emit: (scale, zp, signed) => concatEmit(c, ps, axis, scale, zp, signed) });
}

/** com.microsoft QLinearConcat: Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input. */
export function qlinearConcat(c: Compiler): void {
  const { scale, zp, signed } = c.qparams(0, 1);
  const ps: Part[] = [];
  for (let i = 2; i + 2 < (c.node.input ?? []).length; i += 3) {
    const d = c.qdeq(i, i + 1, i + 2);
    ps.push({ k: 'op', d: { q: d.q, scale: d.scale, zp: d.zp } });
  }
  const first = ps[0] as { k: 'op'; d: Operand };
  c.set({ k: 'q', q: concatEmit(c, ps, axisOf(c, first.d.q.shape.length), scale, zp, signed) });
}

function maxMinEmit(c: Compiler, op: 'max' | 'min', ps: Part[], scale: number, zp: number, signed: boolean): QTensor {
  let [a, b] = ps.map((p) => (p.k === 'op'
    ? { q: p.d.q, scale: p.d.scale!, zp: p.d.zp! }
    : { q: floatConst(c, p.c, scale, zp), scale, zp }));
  const r = Math.max(a.q.shape.length, b.q.shape.length);
  const same = a.q.layout === b.q.layout && a.q.shape.join() === b.q.shape.join();
  if (!same) {
    a = { ...a, q: toPlain(c, a.q) };
    b = { ...b, q: toPlain(c, b.q) };
  }
  const layout = a.q.layout;
  const padTo = (q: QTensor): number[] => {
    const s = [...Array(r - q.shape.length).fill(1), ...q.shape];
    return layout === 'nhwc' ? storageShape(s, 'nhwc') : s;
  };
  const sa = padTo(a.q); const sb = padTo(b.q);
  const out = sa.map((d, i) => {
    if (d !== sb[i] && d !== 1 && sb[i] !== 1) throw c.bad(`cannot broadcast [${a.q.shape}] with [${b.q.shape}]`);
    return Math.max(d, sb[i]);
  });
  const view = (q: QTensor, s: number[]) => (s.join() === storageShape(q.shape, q.layout).join() ? q.tensor : c.tensor('u8', s, q.tensor));
  const output = c.tensor('u8', out);
  c.ops.push({
    op, a: view(a.q, sa), b: view(b.q, sb), output,
    aScale: a.scale, aZeroPoint: a.zp, bScale: b.scale, bZeroPoint: b.zp, outputScale: scale, outputZeroPoint: zp,
  });
  const logical = layout === 'nhwc' ? [out[0], out[3], out[1], out[2]] : out;
  return { tensor: output, shape: logical, layout, signed };
}

export function maxMin(c: Compiler): void {
  const op = c.node.opType === 'Max' ? 'max' : 'min';
  if ((c.node.input ?? []).filter(Boolean).length !== 2) throw c.bad('only two inputs are supported');
  const ps = parts(c, 0);
  if (ps.every((p) => p.k === 'float')) throw c.bad('both inputs are float constants');
  if (ps.some((p) => p.k === 'op' && p.d.scale === undefined)) throw c.bad('inputs must come from DequantizeLinear');
  c.pending({ kind: 'deferred', node: c.node, emit: (scale, zp, signed) => maxMinEmit(c, op, ps, scale, zp, signed) });
}


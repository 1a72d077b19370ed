// The eltwise family: Add, Mul and their QLinear forms become one 'add'/'mul' op on two
// quantized operands with the requantization and any fused Relu/Clip clamp folded in. The
// second operand may be a scalar or per-channel constant, placed in the arena at load.
import { DataType } from '../../../onnx/model.js';
import type { Clamp } from '../plan.js';
import { quantizedClamp } from '../quant.js';
import type { Compiler } from './compiler.js';
import { storageShape, toNhwc, toPlain } from './layout.js';
import { numel, qdtype, type ConstDeq, type Deq, type Pending, type QTensor } from './values.js';

export function visitEltwise(c: Compiler): void {
  const n = c.node;
  c.pending({ kind: 'eltwise', node: n, op: n.opType === 'Add' ? 'add' : 'mul', a: c.deq(0), b: c.deq(1), lo: -Infinity, hi: Infinity });
}

/** QLinearAdd, QLinearMul. */
export function qlinearEltwise(c: Compiler, op: 'add' | 'mul'): void {
  const a = c.qdeq(0, 1, 2);
  const b = c.qdeq(3, 4, 5);
  const { scale, zp, signed } = c.qparams(6, 7);
  c.set({ k: 'q', q: c.emit({ kind: 'eltwise', node: c.node, op, a, b, lo: -Infinity, hi: Infinity }, scale, zp, signed) });
}

/** A constant quantized operand of Add/Mul placed in the arena as a constant u8 (or u16) tensor. */
export function constOperand(c: Compiler, k: ConstDeq): Deq {
  if (k.scales.length !== 1) throw c.bad('a constant Add/Mul operand must be quantized per tensor');
  const shape = k.shape.length ? k.shape : [1];
  if (k.dtype === DataType.UINT16) {
    const t = c.tensor('u16', shape);
    c.tensors[t].constant = c.weight(Uint16Array.from(k.data as Uint16Array));
    return { q: { tensor: t, shape, layout: 'plain', signed: false, bits: 16 }, scale: k.scales[0], zp: k.zps[0] };
  }
  if (k.dtype !== DataType.UINT8 && k.dtype !== DataType.INT8) throw c.bad('a constant Add/Mul operand must be uint8, int8 or uint16');
  const shift = k.dtype === DataType.INT8 ? 128 : 0;
  const bytes = new Uint8Array(k.data.length);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number(k.data[i]) + shift;
  // A scalar is stored as one element (the engine's tensors have rank 1 to 6).
  const t = c.tensor('u8', shape);
  c.tensors[t].constant = c.weight(bytes);
  return { q: { tensor: t, shape, layout: 'plain', signed: shift !== 0 }, scale: k.scales[0], zp: k.zps[0] + shift };
}

export function emitEltwise(c: Compiler, p: Extract<Pending, { kind: 'eltwise' }>, scale: number, zp: number, signed: boolean): QTensor {
  let a = p.a; let b = p.b;
  const total = (d: Deq): number => numel(d.q.shape);
  if (total(a) < total(b)) [a, b] = [b, a]; // both ops are commutative: broadcast the smaller one
  let aq = a.q; let bq = b.q;
  const nb = total(b);
  const channels = aq.layout === 'nhwc' ? aq.shape[1] : aq.shape[aq.shape.length - 1];
  const channelShaped = (s: number[]): boolean => {
    // [C], [1, C], [C, 1, 1], [1, C, 1, 1] against NHWC; trailing [.., C] against plain.
    if (aq.layout === 'nhwc') {
      const pad = [...Array(4 - s.length).fill(1), ...s];
      return pad[0] === 1 && pad[1] === channels && pad[2] === 1 && pad[3] === 1;
    }
    return s[s.length - 1] === channels && s.slice(0, -1).every((d) => d === 1);
  };
  if (nb === 1 || (nb === channels && channelShaped(bq.shape))) {
    // scalar or per-channel broadcast: the engine reads b by index modulo its size
  } else if (nb === total(a) && bq.shape.length === aq.shape.length && bq.shape.every((d, i) => d === aq.shape[i])) {
    if (aq.layout !== bq.layout) {
      if (aq.layout === 'nhwc' && bq.layout === 'plain') bq = toNhwc(c, bq);
      else { aq = toPlain(c, aq); bq = toPlain(c, bq); }
    }
  } else {
    throw c.bad(`cannot broadcast [${bq.shape}] against [${aq.shape}] (same shape, a scalar or a per-channel operand only)`);
  }
  // W8A16: u16 operands both (the engine's 16-bit add and mul broadcast b like the 8-bit ones).
  const bits = aq.bits ?? 8;
  if (bits !== (bq.bits ?? 8)) throw c.bad(`${p.op === 'add' ? 'adds' : 'multiplies'} an 8-bit and a 16-bit operand (quantize both to one width)`);
  const out = c.tensor(qdtype(aq), storageShape(aq.shape, aq.layout));
  c.ops.push({
    op: p.op, a: aq.tensor, b: bq.tensor, output: out,
    aScale: a.scale, aZeroPoint: a.zp, bScale: b.scale, bZeroPoint: b.zp,
    outputScale: scale, outputZeroPoint: zp, clamp: quantizedClamp(p.lo, p.hi, scale, zp, bits) as Clamp,
  });
  return { ...aq, tensor: out, signed };
}

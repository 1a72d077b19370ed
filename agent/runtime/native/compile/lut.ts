// The lut family: any function of one quantized value becomes a 256-entry table (65536 for
// the u16 activations of W8A16 models) (Sigmoid, Tanh,
// LeakyRelu, HardSwish..., a Relu/Clip with nothing to fuse into, a change of scale, the int8
// sign flip). A Relu/Clip after a pending Conv, Gemm or Add/Mul folds into its clamp instead.
import { attr } from '../../../onnx/model.js';
import type { PlanDType } from '../plan.js';
import { activations, unaryTable, unaryTable16 } from '../quant.js';
import type { Compiler } from './compiler.js';
import { storageShape } from './layout.js';
import { kindName, type Deq, type Pending, type QTensor } from './values.js';

export function lut(c: Compiler, q: QTensor, table: Uint8Array | Uint16Array, signedAfter: boolean, dtype: PlanDType = 'u8'): QTensor {
  // u16 activations (W8A16) take 65536-entry tables and no other.
  if ((q.bits === 16) !== (table instanceof Uint16Array)) {
    throw c.bad('16-bit activations (W8A16) are not computed by the native engine for this op yet; ONNX Runtime runs them');
  }
  if (q.bits === 16) dtype = 'u16';
  const out = c.tensor(dtype, storageShape(q.shape, q.layout));
  c.ops.push({ op: 'lut', input: q.tensor, output: out, table: c.weight(table) });
  return { ...q, tensor: out, signed: signedAfter };
}

/** The same values at another scale and zero point (nothing to do when they agree). */
export function requantize(c: Compiler, d: Deq, scale: number, zp: number, signed: boolean): QTensor {
  if (d.scale === scale && d.zp === zp) return { ...d.q, signed };
  if (d.q.bits === 16) return lut(c, d.q, unaryTable16((x) => x, d.scale, d.zp, scale, zp), signed);
  return lut(c, d.q, unaryTable((x) => x, d.scale, d.zp, scale, zp), signed);
}

export function emitLut(c: Compiler, p: Extract<Pending, { kind: 'lut' }>, scale: number, zp: number, signed: boolean): QTensor {
  const table = p.x.q.bits === 16 ? unaryTable16(p.fn, p.x.scale, p.x.zp, scale, zp) : unaryTable(p.fn, p.x.scale, p.x.zp, scale, zp);
  return lut(c, p.x.q, table, signed);
}

/** Relu and Clip: fused into a pending Conv/Gemm/Add/Mul clamp, else a table. */
export function clampOrUnary(c: Compiler): void {
  const n = c.node;
  let lo = 0; let hi = Infinity;
  if (n.opType === 'Clip') {
    const read = (i: number, a: string, d: number): number => {
      if (n.input?.[i]) return Number(c.constValue(i, `Clip ${a}`).data[0]);
      const v = attr(n, a);
      return typeof v === 'number' ? v : d;
    };
    lo = read(1, 'min', -Infinity); hi = read(2, 'max', Infinity);
  }
  const x = c.input(0)!;
  if (x.k === 'pending' && (x.p.kind === 'conv' || x.p.kind === 'deconv' || x.p.kind === 'gemm' || x.p.kind === 'eltwise')) {
    return c.pending({ ...x.p, lo: Math.max(x.p.lo, lo), hi: Math.min(x.p.hi, hi) });
  }
  if (x.k === 'dq') return c.pending({ kind: 'lut', node: n, fn: (v) => Math.min(hi, Math.max(lo, v)), x: x.d });
  throw c.bad(`input must be a quantized value or a Conv/Gemm/Add result (got ${kindName(x)})`);
}

export function unaryOnDeq(c: Compiler, op: string): void {
  const x = c.input(0)!;
  if (x.k !== 'dq') throw c.bad(`input must come from DequantizeLinear (got ${kindName(x)})`);
  const fn = activations[op]({ alpha: attr(c.node, 'alpha') as number | undefined, beta: attr(c.node, 'beta') as number | undefined });
  c.pending({ kind: 'lut', node: c.node, fn, x: x.d });
}

/** QLinearSigmoid, QLinearLeakyRelu. */
export function qlinearUnary(c: Compiler, fnName: string): void {
  const x = c.qdeq(0, 1, 2);
  const { scale, zp, signed } = c.qparams(3, 4);
  const fn = activations[fnName]({ alpha: attr(c.node, 'alpha') as number | undefined });
  c.set({ k: 'q', q: c.emit({ kind: 'lut', node: c.node, fn, x }, scale, zp, signed) });
}

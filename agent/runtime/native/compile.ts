// Compiles an int8 ONNX model (QDQ or QOperator form) into the native engine's plan.
//
// Every ONNX value is tracked as one of: a quantized tensor in the arena ('q'), a float value
// that is exactly the dequantization of one ('dq'), a float arena tensor ('f', graph inputs),
// a constant ('const'), a dequantized constant ('cdq', weights), or a float result still
// waiting for the QuantizeLinear that gives it an output scale ('pending'). A pending Conv or
// Gemm absorbs the Relu/Clip after it into its requantization clamp; the QuantizeLinear then
// emits one fused op. Reshape/Flatten are views. Feature maps live as NHWC; a 4D input is
// transposed once when it is quantized, and a flatten of an NHWC map feeding a Gemm permutes
// the Gemm's weights instead of the data.
import {
  attr, dims, tensorData, valueInfoShape, valueInfoType, DataType,
  type ModelProto, type NodeProto, type TensorProto, type TypedArray,
} from '../../onnx/model.js';
import { EdgeError, Errors } from '../../errors.js';
import type { Clamp, Plan, PlanDType, PlanOp, PlanTensor, WeightBuffer } from './plan.js';
import { activations, quantizedClamp, requantMultipliers, roundHalfEven, signFlipTable, unaryTable } from './quant.js';
import { opLabel, unsupportedOps } from './support.js';

type Layout = 'plain' | 'nhwc' | 'flat-hwc';

/** A u8 tensor in the arena; `shape` is the ONNX (logical) shape, storage follows `layout`. */
interface QTensor {
  tensor: number;
  shape: number[];
  layout: Layout;
  /** For 'flat-hwc': the [C, H, W] of the NHWC map it was flattened from. */
  chw?: [number, number, number];
  /** The ONNX element type was int8 (storage holds value + 128). */
  signed: boolean;
}
/** A float value equal to (q - zp) * scale; zp in the engine's u8 domain. */
interface Deq { q: QTensor; scale: number; zp: number }
interface Const { data: TypedArray; shape: number[]; dtype: number }
/** A dequantized constant: per-tensor (1 scale) or per-axis scales and zero points (raw domain). */
interface ConstDeq { data: TypedArray; shape: number[]; dtype: number; scales: number[]; zps: number[]; axis: number }

type Pending =
  | { kind: 'conv'; node: NodeProto; x: Deq; w: ConstDeq; b?: Value; lo: number; hi: number }
  | { kind: 'gemm'; node: NodeProto; x: Deq; w: ConstDeq; transB: boolean; b?: Value; lo: number; hi: number }
  | { kind: 'maxpool' | 'avgpool'; node: NodeProto; x: Deq; global: boolean }
  | { kind: 'binary'; node: NodeProto; op: 'add' | 'mul'; a: Deq; b: Deq; lo: number; hi: number }
  | { kind: 'unary'; node: NodeProto; fn: (x: number) => number; x: Deq };

type Value =
  | { k: 'q'; q: QTensor }
  | { k: 'dq'; d: Deq }
  | { k: 'f'; tensor: number; shape: number[] }
  | { k: 'const'; c: Const }
  | { k: 'cdq'; c: ConstDeq }
  | { k: 'pending'; p: Pending };

export interface CompiledModel {
  plan: Plan;
  weights: WeightBuffer[];
  /** Graph inputs and outputs with their ONNX dtypes and shapes at batch 1. */
  inputs: { name: string; dtype: 'float32' | 'uint8' | 'int8'; shape: number[]; onnxShape: (number | string)[] }[];
  outputs: { name: string; dtype: 'float32' | 'uint8' | 'int8'; shape: number[] }[];
  /** How many ONNX nodes were folded into how many engine ops. */
  stats: { nodes: number; ops: number };
}

/** A structural reason the model cannot be compiled (the operator type is known but this use is not). */
export class UnsupportedUse extends Error {
  constructor(readonly label: string, why: string) {
    super(`${label}: ${why}`);
  }
}

const numel = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** What a value is, for messages ("got a float tensor that is not quantized"). */
function kindName(v: Value | undefined): string {
  switch (v?.k) {
    case 'q': return 'a quantized tensor';
    case 'dq': return 'a dequantized tensor';
    case 'f': return 'a float tensor that is not quantized';
    case 'const': return 'a constant';
    case 'cdq': return 'a dequantized constant';
    case 'pending': return 'a float result that is not quantized';
    default: return 'nothing';
  }
}
const ints = (v: unknown, d: number[]): number[] => (Array.isArray(v) ? (v as number[]) : d);

/** Compiles the model or throws EDGE_MODEL_UNSUPPORTED_OPS naming what is not supported. */
export function compileModel(model: ModelProto, what = 'model'): CompiledModel {
  const unsupported = unsupportedOps(model);
  if (unsupported.length) throw unsupportedError(what, unsupported);
  try {
    return new Compiler(model).run();
  } catch (err) {
    if (err instanceof UnsupportedUse) throw unsupportedError(what, [err.message]);
    throw err;
  }
}

/** EDGE_MODEL_UNSUPPORTED_OPS with the list in details.unsupported (for /v1/status and 'auto'). */
export function unsupportedError(what: string, unsupported: string[]): EdgeError {
  const e = Errors.MODEL_UNSUPPORTED_OPS(what, unsupported);
  return new EdgeError(e.code, e.message, e.statusCode, { unsupported });
}

class Compiler {
  private readonly tensors: PlanTensor[] = [];
  private readonly ops: PlanOp[] = [];
  private readonly weights: WeightBuffer[] = [];
  private readonly values = new Map<string, Value>();
  private readonly uses = new Map<string, number>();
  private node!: NodeProto;

  constructor(private readonly model: ModelProto) {}

  run(): CompiledModel {
    const g = this.model.graph!;
    for (const n of g.node ?? []) for (const i of n.input ?? []) if (i) this.uses.set(i, (this.uses.get(i) ?? 0) + 1);
    for (const o of g.output ?? []) this.uses.set(o.name!, (this.uses.get(o.name!) ?? 0) + 1);
    for (const t of g.initializer ?? []) {
      this.values.set(t.name!, { k: 'const', c: { data: tensorData(t), shape: dims(t), dtype: t.dataType ?? 0 } });
    }
    const inputs: CompiledModel['inputs'] = [];
    const planInputs: Plan['inputs'] = [];
    for (const vi of g.input ?? []) {
      if (this.values.has(vi.name!)) continue; // an initializer listed as an input (old exporters)
      const onnxShape = valueInfoShape(vi);
      const shape = onnxShape.map((d, i) => {
        if (typeof d === 'number' && d > 0) return d;
        if (i === 0) return 1; // symbolic batch: the plan is compiled for one sample
        throw new UnsupportedUse(`input ${vi.name}`, `dimension ${i} is symbolic (${d}); only the batch may be`);
      });
      const et = valueInfoType(vi);
      if (et === DataType.FLOAT) {
        const t = this.tensor('f32', shape);
        this.values.set(vi.name!, { k: 'f', tensor: t, shape });
        inputs.push({ name: vi.name!, dtype: 'float32', shape, onnxShape });
        planInputs.push({ name: vi.name!, tensor: t });
      } else if (et === DataType.UINT8 || et === DataType.INT8) {
        const signed = et === DataType.INT8;
        const t = this.tensor(signed ? 's8' : 'u8', shape);
        let q: QTensor = { tensor: t, shape, layout: 'plain', signed };
        if (signed) q = this.lut(q, signFlipTable(), true);
        this.values.set(vi.name!, { k: 'q', q });
        inputs.push({ name: vi.name!, dtype: signed ? 'int8' : 'uint8', shape, onnxShape });
        planInputs.push({ name: vi.name!, tensor: t });
      } else {
        throw new UnsupportedUse(`input ${vi.name}`, `element type ${et} (the engine takes float32, uint8 or int8 inputs)`);
      }
    }
    for (const n of g.node ?? []) {
      this.node = n;
      this.visit(n);
    }
    const outputs: CompiledModel['outputs'] = [];
    const planOutputs: Plan['outputs'] = [];
    for (const vo of g.output ?? []) {
      this.node = { opType: 'graph output', name: vo.name };
      const v = this.get(vo.name!);
      let tensor: number; let dtype: 'float32' | 'uint8' | 'int8'; let shape: number[];
      if (v.k === 'dq') {
        const src = v.d.q.layout === 'flat-hwc' ? this.toPlain(v.d.q) : v.d.q;
        shape = src.shape;
        tensor = this.tensor('f32', shape);
        this.ops.push({ op: 'dequantize', input: src.tensor, output: tensor, scale: v.d.scale, zeroPoint: v.d.zp, nhwcToNchw: src.layout === 'nhwc' });
        dtype = 'float32';
      } else if (v.k === 'q') {
        let q = this.toPlain(v.q);
        if (q.signed) q = this.lut(q, signFlipTable(), false, 's8');
        tensor = q.tensor; shape = q.shape; dtype = v.q.signed ? 'int8' : 'uint8';
      } else if (v.k === 'f') {
        tensor = v.tensor; shape = v.shape; dtype = 'float32';
      } else {
        throw this.bad(`output ${vo.name} is ${v.k === 'pending' ? 'a float result that is never quantized' : 'a constant'}`);
      }
      outputs.push({ name: vo.name!, dtype, shape });
      planOutputs.push({ name: vo.name!, tensor });
    }
    return {
      plan: { tensors: this.tensors, ops: this.ops, inputs: planInputs, outputs: planOutputs },
      weights: this.weights,
      inputs, outputs,
      stats: { nodes: g.node?.length ?? 0, ops: this.ops.length },
    };
  }

  // ---- plumbing ---------------------------------------------------------------------------

  private bad(why: string): UnsupportedUse {
    const n = this.node;
    return new UnsupportedUse(`${opLabel(n.opType ?? '?', n.domain ?? '')} '${n.name ?? ''}'`, why);
  }

  private get(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw this.bad(`input ${name} is not produced by an earlier node (graph not topologically sorted?)`);
    return v;
  }

  private input(i: number): Value | undefined {
    const name = this.node.input?.[i];
    return name ? this.get(name) : undefined;
  }

  private set(v: Value, i = 0): void {
    this.values.set(this.node.output![i], v);
  }

  private tensor(dtype: PlanDType, shape: number[], viewOf?: number): number {
    const base = viewOf === undefined ? undefined : (this.tensors[viewOf].viewOf ?? viewOf);
    this.tensors.push(base === undefined ? { dtype, shape } : { dtype, shape, viewOf: base });
    return this.tensors.length - 1;
  }

  private weight(w: WeightBuffer): number {
    this.weights.push(w);
    return this.weights.length - 1;
  }

  private constValue(i: number, what: string): Const {
    const v = this.input(i);
    if (!v || v.k !== 'const') throw this.bad(`${what} must be a constant initializer`);
    return v.c;
  }

  /** A scalar constant (scale or zero point); a missing zero point is 0 of type uint8. */
  private scalar(i: number, what: string): { value: number; dtype: number } {
    if (!this.node.input?.[i]) return { value: 0, dtype: DataType.UINT8 };
    const c = this.constValue(i, what);
    if (c.data.length !== 1) throw this.bad(`${what} must be a single value (per-tensor), got ${c.data.length}`);
    return { value: Number(c.data[0]), dtype: c.dtype };
  }

  /** Scale + zero point of a quantized activation, zero point moved into the u8 domain. */
  private qparams(si: number, zi: number): { scale: number; zp: number; signed: boolean } {
    const s = this.scalar(si, 'scale');
    const z = this.scalar(zi, 'zero point');
    if (z.dtype !== DataType.UINT8 && z.dtype !== DataType.INT8) throw this.bad('activations must be uint8 or int8');
    if (!(s.value > 0) || !Number.isFinite(s.value)) throw this.bad(`scale must be a positive number, got ${s.value}`);
    const signed = z.dtype === DataType.INT8;
    return { scale: s.value, zp: z.value + (signed ? 128 : 0), signed };
  }

  /** A constant quantized with per-tensor or per-axis scale/zero point (weights, biases). */
  private constDeq(c: Const, si: number, zi: number, axis: number): ConstDeq {
    const s = this.constValue(si, 'weight scale');
    const zname = this.node.input?.[zi];
    const z = zname ? this.constValue(zi, 'weight zero point') : undefined;
    const scales = Array.from(s.data as Float32Array, Number);
    const zps = z ? Array.from(z.data as Int8Array, Number) : scales.map(() => 0);
    if (scales.length !== 1) {
      const ax = axis < 0 ? axis + c.shape.length : axis;
      if (c.shape[ax] !== scales.length) throw this.bad(`per-axis scale has ${scales.length} values for axis ${axis} of size ${c.shape[ax]}`);
      axis = ax;
    }
    if (zps.length !== scales.length) throw this.bad('zero point and scale differ in length');
    return { data: c.data, shape: c.shape, dtype: c.dtype, scales, zps, axis };
  }

  // ---- layouts ----------------------------------------------------------------------------

  private transpose(q: QTensor, perm: number[], storage: number[]): number {
    const out = this.tensor('u8', storage);
    this.ops.push({ op: 'transpose', input: q.tensor, output: out, perm });
    return out;
  }

  /** The tensor in NCHW (ONNX) storage order. */
  private toPlain(q: QTensor): QTensor {
    if (q.layout === 'plain') return q;
    if (q.layout === 'nhwc') {
      const [n, c, h, w] = q.shape;
      if (h * w === 1) return { ...q, tensor: this.tensor('u8', q.shape, q.tensor), layout: 'plain' };
      return { ...q, tensor: this.transpose(q, [0, 3, 1, 2], [n, c, h, w]), layout: 'plain' };
    }
    const [c, h, w] = q.chw!;
    const n = numel(q.shape) / (c * h * w);
    const as4d = this.tensor('u8', [n, h, w, c], q.tensor);
    const t = this.transpose({ ...q, tensor: as4d }, [0, 3, 1, 2], [n, c, h, w]);
    return { tensor: this.tensor('u8', q.shape, t), shape: q.shape, layout: 'plain', signed: q.signed };
  }

  /** A 4D map in NHWC storage, for convolution and pooling. */
  private toNhwc(q: QTensor): QTensor {
    if (q.shape.length !== 4) throw this.bad(`expects a 4D NCHW input, got shape [${q.shape}]`);
    if (q.layout === 'nhwc') return q;
    const p = this.toPlain(q);
    const [n, c, h, w] = p.shape;
    return { ...p, tensor: this.transpose(p, [0, 2, 3, 1], [n, h, w, c]), layout: 'nhwc' };
  }

  /** A reshape (Reshape, Flatten, Squeeze...) as a view; NHWC maps stay NHWC where the consumer allows. */
  private view(q: QTensor, shape: number[]): QTensor {
    if (numel(shape) !== numel(q.shape)) throw this.bad(`reshape from [${q.shape}] to [${shape}] changes the element count`);
    const same = shape.length === q.shape.length && shape.every((d, i) => d === q.shape[i]);
    if (same) return q;
    if (q.layout === 'nhwc') {
      const [n, c, h, w] = q.shape;
      if (h * w === 1) return { ...q, tensor: this.tensor('u8', shape, q.tensor), shape, layout: 'plain' };
      if (shape.length === 2 && shape[0] === n) {
        return { ...q, tensor: this.tensor('u8', [n, h * w * c], q.tensor), shape, layout: 'flat-hwc', chw: [c, h, w] };
      }
    }
    const p = this.toPlain(q);
    return { tensor: this.tensor('u8', shape, p.tensor), shape, layout: 'plain', signed: q.signed };
  }

  private storageShape(shape: number[], layout: Layout): number[] {
    if (layout === 'nhwc') return [shape[0], shape[2], shape[3], shape[1]];
    if (layout === 'flat-hwc') return [shape[0], numel(shape) / shape[0]];
    return shape;
  }

  private lut(q: QTensor, table: Uint8Array, signedAfter: boolean, dtype: PlanDType = 'u8'): QTensor {
    const out = this.tensor(dtype, this.storageShape(q.shape, q.layout));
    this.ops.push({ op: 'lut', input: q.tensor, output: out, table: this.weight(table) });
    return { ...q, tensor: out, signed: signedAfter };
  }

  // ---- nodes ------------------------------------------------------------------------------

  private visit(n: NodeProto): void {
    const op = n.opType!;
    switch (op) {
      case 'QuantizeLinear': return this.quantizeLinear();
      case 'DequantizeLinear': return this.dequantizeLinear();
      case 'Conv': return this.pending({ kind: 'conv', node: n, x: this.deq(0), w: this.weightDeq(1), b: this.input(2), lo: -Infinity, hi: Infinity });
      case 'Gemm': {
        if ((attr(n, 'transA') ?? 0) !== 0) throw this.bad('transA is not supported');
        if ((attr(n, 'alpha') ?? 1) !== 1 || (attr(n, 'beta') ?? 1) !== 1) throw this.bad('alpha and beta must be 1');
        return this.pending({ kind: 'gemm', node: n, x: this.deq(0), w: this.weightDeq(1), transB: attr(n, 'transB') === 1, b: this.input(2), lo: -Infinity, hi: Infinity });
      }
      case 'MatMul': return this.pending({ kind: 'gemm', node: n, x: this.deq(0), w: this.weightDeq(1), transB: false, lo: -Infinity, hi: Infinity });
      case 'Add': case 'Mul':
        return this.pending({ kind: 'binary', node: n, op: op === 'Add' ? 'add' : 'mul', a: this.deq(0), b: this.deq(1), lo: -Infinity, hi: Infinity });
      case 'Relu': case 'Clip': return this.clampOrUnary();
      case 'Sigmoid': case 'Tanh': case 'LeakyRelu': case 'HardSigmoid': case 'HardSwish':
        return this.unaryOnDeq(op);
      case 'MaxPool': case 'AveragePool': case 'GlobalAveragePool': return this.pool();
      case 'Reshape': case 'Flatten': case 'Squeeze': case 'Unsqueeze': case 'Identity': case 'Dropout':
        return this.reshape();
      case 'QLinearConv': return this.qlinearConv();
      case 'QLinearMatMul': return this.qlinearMatMul();
      case 'QLinearAdd': case 'QLinearMul': return this.qlinearBinary(op === 'QLinearAdd' ? 'add' : 'mul');
      case 'QLinearGlobalAveragePool': case 'QLinearAveragePool': return this.qlinearPool();
      case 'QLinearSigmoid': case 'QLinearLeakyRelu': return this.qlinearUnary(op === 'QLinearSigmoid' ? 'Sigmoid' : 'LeakyRelu');
      default: throw this.bad('not implemented');
    }
  }

  /** Operand i as a dequantized activation (a constant operand becomes a constant tensor). */
  private deq(i: number): Deq {
    const v = this.input(i);
    if (v?.k === 'dq') return v.d;
    if (v?.k === 'cdq') return this.constOperand(v.c);
    throw this.bad(`input ${i} must come from DequantizeLinear (got ${kindName(v)})`);
  }

  private weightDeq(i: number): ConstDeq {
    const v = this.input(i);
    if (v?.k === 'cdq') return v.c;
    throw this.bad(`weights (input ${i}) must be a DequantizeLinear of an int8/uint8 initializer`);
  }

  /** A constant quantized operand of Add/Mul placed in the arena as a constant u8 tensor. */
  private constOperand(c: ConstDeq): Deq {
    if (c.scales.length !== 1) throw this.bad('a constant Add/Mul operand must be quantized per tensor');
    if (c.dtype !== DataType.UINT8 && c.dtype !== DataType.INT8) throw this.bad('a constant Add/Mul operand must be uint8 or int8');
    const shift = c.dtype === DataType.INT8 ? 128 : 0;
    const bytes = new Uint8Array(c.data.length);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Number(c.data[i]) + shift;
    const t = this.tensor('u8', c.shape);
    this.tensors[t].constant = this.weight(bytes);
    return { q: { tensor: t, shape: c.shape, layout: 'plain', signed: shift !== 0 }, scale: c.scales[0], zp: c.zps[0] + shift };
  }

  private pending(p: Pending): void {
    const out = this.node.output![0];
    if ((this.uses.get(out) ?? 0) !== 1) {
      throw this.bad(`its float output ${out} must feed exactly one QuantizeLinear (or Relu/Clip then QuantizeLinear)`);
    }
    this.set({ k: 'pending', p });
  }

  private quantizeLinear(): void {
    const x = this.input(0)!;
    if ((this.node.input?.[1] && (this.constValue(1, 'scale').data.length !== 1))) throw this.bad('per-axis quantization of activations is not supported');
    const { scale, zp, signed } = this.qparams(1, 2);
    if (x.k === 'f') {
      const four = x.shape.length === 4;
      const layout: Layout = four ? 'nhwc' : 'plain';
      const out = this.tensor('u8', this.storageShape(x.shape, layout));
      this.ops.push({ op: 'quantize', input: x.tensor, output: out, scale, zeroPoint: zp, nchwToNhwc: four });
      return this.set({ k: 'q', q: { tensor: out, shape: x.shape, layout, signed } });
    }
    if (x.k === 'pending') return this.set({ k: 'q', q: this.emit(x.p, scale, zp, signed) });
    if (x.k === 'dq') return this.set({ k: 'q', q: this.requantize(x.d, scale, zp, signed) });
    throw this.bad('quantizing a constant at run time is not supported (fold it into an initializer)');
  }

  private requantize(d: Deq, scale: number, zp: number, signed: boolean): QTensor {
    if (d.scale === scale && d.zp === zp) return { ...d.q, signed };
    return this.lut(d.q, unaryTable((x) => x, d.scale, d.zp, scale, zp), signed);
  }

  private dequantizeLinear(): void {
    const x = this.input(0)!;
    if (x.k === 'q') {
      if (this.constValue(1, 'scale').data.length !== 1) throw this.bad('per-axis dequantization of activations is not supported');
      const { scale, zp } = this.qparams(1, 2);
      return this.set({ k: 'dq', d: { q: x.q, scale, zp } });
    }
    if (x.k === 'const') {
      const axis = Number(attr(this.node, 'axis') ?? 1);
      return this.set({ k: 'cdq', c: this.constDeq(x.c, 1, 2, axis) });
    }
    throw this.bad(`input must be a quantized tensor or an initializer (got ${kindName(x)})`);
  }

  private clampOrUnary(): void {
    const n = this.node;
    let lo = 0; let hi = Infinity;
    if (n.opType === 'Clip') {
      const read = (i: number, a: string, d: number): number => {
        if (n.input?.[i]) return Number(this.constValue(i, `Clip ${a}`).data[0]);
        const v = attr(n, a);
        return typeof v === 'number' ? v : d;
      };
      lo = read(1, 'min', -Infinity); hi = read(2, 'max', Infinity);
    }
    const x = this.input(0)!;
    if (x.k === 'pending' && (x.p.kind === 'conv' || x.p.kind === 'gemm' || x.p.kind === 'binary')) {
      return this.pending({ ...x.p, lo: Math.max(x.p.lo, lo), hi: Math.min(x.p.hi, hi) });
    }
    if (x.k === 'dq') return this.pending({ kind: 'unary', node: n, fn: (v) => Math.min(hi, Math.max(lo, v)), x: x.d });
    throw this.bad(`input must be a quantized value or a Conv/Gemm/Add result (got ${kindName(x)})`);
  }

  private unaryOnDeq(op: string): void {
    const x = this.input(0)!;
    if (x.k !== 'dq') throw this.bad(`input must come from DequantizeLinear (got ${kindName(x)})`);
    const fn = activations[op]({ alpha: attr(this.node, 'alpha') as number | undefined, beta: attr(this.node, 'beta') as number | undefined });
    this.pending({ kind: 'unary', node: this.node, fn, x: x.d });
  }

  private pool(): void {
    const x = this.input(0)!;
    const global = this.node.opType === 'GlobalAveragePool';
    const kind = this.node.opType === 'MaxPool' ? 'maxpool' : 'avgpool';
    if (this.node.output!.length > 1 && this.node.output![1]) throw this.bad('the Indices output is not supported');
    if (x.k === 'dq') return this.pending({ kind, node: this.node, x: x.d, global });
    if (x.k === 'q' && kind === 'maxpool') return this.set({ k: 'q', q: this.emitPool('maxpool', this.toNhwc(x.q), false) });
    throw this.bad(`input must come from DequantizeLinear (got ${kindName(x)})`);
  }

  private reshape(): void {
    const n = this.node;
    const x = this.input(0)!;
    const shapeOf = (s: number[]): number[] => {
      switch (n.opType) {
        case 'Reshape': {
          const spec = Array.from(this.constValue(1, 'Reshape shape').data as BigInt64Array, Number);
          const out = spec.map((d, i) => (d === 0 ? s[i] : d));
          const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
          return out.map((d) => (d === -1 ? numel(s) / known : d));
        }
        case 'Flatten': {
          let axis = Number(attr(n, 'axis') ?? 1);
          if (axis < 0) axis += s.length;
          return [numel(s.slice(0, axis)), numel(s.slice(axis))];
        }
        case 'Squeeze': {
          const axes = (n.input?.[1] ? Array.from(this.constValue(1, 'Squeeze axes').data as BigInt64Array, Number) : ints(attr(n, 'axes'), []))
            .map((a) => (a < 0 ? a + s.length : a));
          return s.filter((d, i) => (axes.length ? !axes.includes(i) : d !== 1));
        }
        case 'Unsqueeze': {
          const axes = (n.input?.[1] ? Array.from(this.constValue(1, 'Unsqueeze axes').data as BigInt64Array, Number) : ints(attr(n, 'axes'), []));
          const r = s.length + axes.length;
          const norm = axes.map((a) => (a < 0 ? a + r : a));
          const out: number[] = []; let j = 0;
          for (let i = 0; i < r; i++) out.push(norm.includes(i) ? 1 : s[j++]);
          return out;
        }
        default: return s;
      }
    };
    if (x.k === 'q') return this.set({ k: 'q', q: this.view(x.q, shapeOf(x.q.shape)) });
    if (x.k === 'dq') return this.set({ k: 'dq', d: { ...x.d, q: this.view(x.d.q, shapeOf(x.d.q.shape)) } });
    if (x.k === 'f') {
      const shape = shapeOf(x.shape);
      return this.set({ k: 'f', tensor: this.tensor('f32', shape, x.tensor), shape });
    }
    if (x.k === 'const') return this.set({ k: 'const', c: { ...x.c, shape: shapeOf(x.c.shape) } });
    if (x.k === 'cdq') return this.set({ k: 'cdq', c: { ...x.c, shape: shapeOf(x.c.shape) } });
    throw this.bad('reshaping a float result that is not quantized is not supported');
  }

  // ---- QOperator form ---------------------------------------------------------------------

  private qdeq(i: number, si: number, zi: number): Deq {
    const v = this.input(i);
    const { scale, zp } = this.qparams(si, zi);
    if (v?.k === 'q') return { q: v.q, scale, zp };
    if (v?.k === 'const') return this.constOperand({ ...v.c, scales: [scale], zps: [v.c.dtype === DataType.INT8 ? zp - 128 : zp], axis: 0 });
    throw this.bad(`input ${i} must be a quantized tensor (got ${kindName(v)})`);
  }

  private qlinearConv(): void {
    const x = this.qdeq(0, 1, 2);
    const w = this.constDeq(this.constValue(3, 'QLinearConv weights'), 4, 5, 0);
    const { scale, zp, signed } = this.qparams(6, 7);
    const p: Pending = { kind: 'conv', node: this.node, x, w, b: this.input(8), lo: -Infinity, hi: Infinity };
    this.set({ k: 'q', q: this.emit(p, scale, zp, signed) });
  }

  private qlinearMatMul(): void {
    const x = this.qdeq(0, 1, 2);
    const w = this.constDeq(this.constValue(3, 'QLinearMatMul B'), 4, 5, 1);
    const { scale, zp, signed } = this.qparams(6, 7);
    this.set({ k: 'q', q: this.emit({ kind: 'gemm', node: this.node, x, w, transB: false, lo: -Infinity, hi: Infinity }, scale, zp, signed) });
  }

  private qlinearBinary(op: 'add' | 'mul'): void {
    const a = this.qdeq(0, 1, 2);
    const b = this.qdeq(3, 4, 5);
    const { scale, zp, signed } = this.qparams(6, 7);
    this.set({ k: 'q', q: this.emit({ kind: 'binary', node: this.node, op, a, b, lo: -Infinity, hi: Infinity }, scale, zp, signed) });
  }

  private qlinearPool(): void {
    if (attr(this.node, 'channels_last') === 1) throw this.bad('channels_last=1 is not supported');
    const x = this.qdeq(0, 1, 2);
    const { scale, zp, signed } = this.qparams(3, 4);
    const global = this.node.opType === 'QLinearGlobalAveragePool';
    this.set({ k: 'q', q: this.emit({ kind: 'avgpool', node: this.node, x, global }, scale, zp, signed) });
  }

  private qlinearUnary(fnName: string): void {
    const x = this.qdeq(0, 1, 2);
    const { scale, zp, signed } = this.qparams(3, 4);
    const fn = activations[fnName]({ alpha: attr(this.node, 'alpha') as number | undefined });
    this.set({ k: 'q', q: this.emit({ kind: 'unary', node: this.node, fn, x }, scale, zp, signed) });
  }

  // ---- emitting fused ops -----------------------------------------------------------------

  private emit(p: Pending, scale: number, zp: number, signed: boolean): QTensor {
    const saved = this.node;
    this.node = p.node;
    try {
      switch (p.kind) {
        case 'conv': return this.emitConv(p, scale, zp, signed);
        case 'gemm': return this.emitGemm(p, scale, zp, signed);
        case 'maxpool': {
          const out = this.emitPool('maxpool', this.toNhwc(p.x.q), p.global);
          return this.requantize({ q: out, scale: p.x.scale, zp: p.x.zp }, scale, zp, signed);
        }
        case 'avgpool': return { ...this.emitPool('avgpool', this.toNhwc(p.x.q), p.global, p.x, scale, zp), signed };
        case 'binary': return this.emitBinary(p, scale, zp, signed);
        case 'unary': return this.lut(p.x.q, unaryTable(p.fn, p.x.scale, p.x.zp, scale, zp), signed);
      }
    } finally {
      this.node = saved;
    }
  }

  /** Weights with their zero point subtracted, as int8 (refused when that leaves the int8 range). */
  private centredWeights(w: ConstDeq, channelOf: (i: number) => number): Int8Array {
    if (w.dtype !== DataType.INT8 && w.dtype !== DataType.UINT8) throw this.bad('weights must be int8 or uint8');
    const out = new Int8Array(w.data.length);
    for (let i = 0; i < out.length; i++) {
      const z = w.zps.length === 1 ? w.zps[0] : w.zps[channelOf(i)];
      const v = Number(w.data[i]) - z;
      if (v < -128 || v > 127) throw this.bad(`weight minus zero point (${v}) leaves the int8 range; asymmetric weights are not supported`);
      out[i] = v;
    }
    return out;
  }

  /** Bias as int32 in the accumulator's scale (input_scale * weight_scale[c]). */
  private bias(b: Value | undefined, channels: number, inScale: number, wScales: number[]): Int32Array {
    const out = new Int32Array(channels);
    if (!b) return out;
    const accScale = (c: number): number => Math.fround(Math.fround(inScale) * Math.fround(wScales.length === 1 ? wScales[0] : wScales[c]));
    if (b.k === 'cdq' && b.c.dtype === DataType.INT32) {
      if (b.c.data.length !== channels) throw this.bad(`bias has ${b.c.data.length} values for ${channels} outputs`);
      for (let c = 0; c < channels; c++) {
        const bs = b.c.scales.length === 1 ? b.c.scales[0] : b.c.scales[c];
        const bz = b.c.zps.length === 1 ? b.c.zps[0] : b.c.zps[c];
        const v = Number(b.c.data[c]) - bz;
        const ratio = bs / accScale(c);
        out[c] = Math.abs(ratio - 1) < 1e-5 ? v : roundHalfEven(v * ratio);
      }
      return out;
    }
    if (b.k === 'const' && (b.c.dtype === DataType.INT32 || b.c.dtype === DataType.FLOAT)) {
      if (b.c.data.length !== channels) throw this.bad(`bias has ${b.c.data.length} values for ${channels} outputs`);
      for (let c = 0; c < channels; c++) {
        const v = Number(b.c.data[c]);
        out[c] = b.c.dtype === DataType.INT32 ? v : roundHalfEven(v / accScale(c));
      }
      return out;
    }
    throw this.bad('bias must be an int32 initializer (optionally dequantized) or a float initializer');
  }

  private emitConv(p: Extract<Pending, { kind: 'conv' }>, scale: number, zp: number, signed: boolean): QTensor {
    const n = p.node;
    const x = this.toNhwc(p.x.q);
    const [N, C, H, W] = x.shape;
    if (p.w.shape.length !== 4) throw this.bad('only 2D convolution (4D weights) is supported');
    const [M, Cg, KH, KW] = p.w.shape;
    const group = Number(attr(n, 'group') ?? 1);
    if (Cg * group !== C || M % group !== 0) throw this.bad(`weights [${p.w.shape}] with group ${group} do not fit ${C} input channels`);
    if (p.w.scales.length !== 1 && p.w.axis !== 0) throw this.bad('per-channel weight scales must be along the output channel axis');
    const kernel = ints(attr(n, 'kernel_shape'), [KH, KW]);
    if (kernel[0] !== KH || kernel[1] !== KW) throw this.bad('kernel_shape disagrees with the weights');
    const strides = ints(attr(n, 'strides'), [1, 1]);
    const dil = ints(attr(n, 'dilations'), [1, 1]);
    const pads = this.pads(H, W, [KH, KW], strides, dil);
    const Ho = Math.floor((H + pads[0] + pads[2] - dil[0] * (KH - 1) - 1) / strides[0]) + 1;
    const Wo = Math.floor((W + pads[1] + pads[3] - dil[1] * (KW - 1) - 1) / strides[1]) + 1;
    if (Ho < 1 || Wo < 1) throw this.bad('output would be empty');
    const per = Cg * KH * KW;
    const centred = this.centredWeights(p.w, (i) => Math.floor(i / per));
    const out = this.tensor('u8', [N, Ho, Wo, M]);
    this.ops.push({
      op: 'conv', input: x.tensor, output: out,
      weights: this.weight(centred),
      bias: this.weight(this.bias(p.b, M, p.x.scale, p.w.scales)),
      multipliers: this.weight(requantMultipliers(p.x.scale, p.w.scales, scale, M)),
      inputZeroPoint: p.x.zp, outputZeroPoint: zp, clamp: quantizedClamp(p.lo, p.hi, scale, zp) as Clamp,
      kernel: [KH, KW], strides: [strides[0], strides[1]], pads, dilations: [dil[0], dil[1]], group,
    });
    return { tensor: out, shape: [N, M, Ho, Wo], layout: 'nhwc', signed };
  }

  private pads(H: number, W: number, k: number[], s: number[], d: number[]): [number, number, number, number] {
    const autoPad = String(attr(this.node, 'auto_pad') ?? 'NOTSET');
    if (autoPad === 'NOTSET') {
      const p = ints(attr(this.node, 'pads'), [0, 0, 0, 0]);
      return [p[0], p[1], p[2], p[3]];
    }
    if (autoPad === 'VALID') return [0, 0, 0, 0];
    const padFor = (size: number, i: number): [number, number] => {
      const out = Math.ceil(size / s[i]);
      const total = Math.max(0, (out - 1) * s[i] + d[i] * (k[i] - 1) + 1 - size);
      const small = Math.floor(total / 2);
      return autoPad === 'SAME_LOWER' ? [total - small, small] : [small, total - small];
    };
    const [t, b] = padFor(H, 0); const [l, r] = padFor(W, 1);
    return [t, l, b, r];
  }

  private emitGemm(p: Extract<Pending, { kind: 'gemm' }>, scale: number, zp: number, signed: boolean): QTensor {
    let x = p.x.q;
    if (p.w.shape.length !== 2) throw this.bad(`B must be a 2D constant, got [${p.w.shape}]`);
    if (x.layout === 'nhwc') x = this.toPlain(x);
    const K = x.shape[x.shape.length - 1];
    const [r, c] = p.w.shape;
    const N = p.transB ? r : c;
    if ((p.transB ? c : r) !== K) throw this.bad(`B [${p.w.shape}] does not fit an input with ${K} features`);
    const outAxis = p.transB ? 0 : 1;
    if (p.w.scales.length !== 1 && p.w.axis !== outAxis) throw this.bad('per-channel weight scales must be along the output axis');
    const centred = this.centredWeights(p.w, (i) => (p.transB ? Math.floor(i / c) : i % c));
    // Rows per output; a flattened NHWC input takes its features in HWC order, so permute K.
    const rows = new Int8Array(N * K);
    const hwc = x.layout === 'flat-hwc' ? x.chw! : undefined;
    for (let nOut = 0; nOut < N; nOut++) {
      for (let k = 0; k < K; k++) {
        let src = k;
        if (hwc) {
          const [C, H, W] = hwc;
          const ch = k % C; const hw = Math.floor(k / C);
          src = ch * H * W + hw;
          void W;
        }
        rows[nOut * K + k] = p.transB ? centred[nOut * K + src] : centred[src * N + nOut];
      }
    }
    const M = numel(x.shape) / K;
    const out = this.tensor('u8', [M, N]);
    this.ops.push({
      op: 'gemm', input: x.tensor, output: out,
      weights: this.weight(rows),
      bias: this.weight(this.bias(p.b, N, p.x.scale, p.w.scales)),
      multipliers: this.weight(requantMultipliers(p.x.scale, p.w.scales, scale, N)),
      inputZeroPoint: p.x.zp, outputZeroPoint: zp, clamp: quantizedClamp(p.lo, p.hi, scale, zp) as Clamp,
    });
    return { tensor: out, shape: [...x.shape.slice(0, -1), N], layout: 'plain', signed };
  }

  private emitPool(kind: 'maxpool' | 'avgpool', x: QTensor, global: boolean, d?: Deq, scale = 0, zp = 0): QTensor {
    const n = this.node;
    const [N, C, H, W] = x.shape;
    const kernel = global ? [H, W] : ints(attr(n, 'kernel_shape'), []);
    if (kernel.length !== 2) throw this.bad('only 2D pooling is supported');
    const strides = global ? [1, 1] : ints(attr(n, 'strides'), [1, 1]);
    const dil = global ? [1, 1] : ints(attr(n, 'dilations'), [1, 1]);
    const pads = global ? [0, 0, 0, 0] as [number, number, number, number] : this.pads(H, W, kernel, strides, dil);
    const ceil = !global && attr(n, 'ceil_mode') === 1;
    const size = (len: number, i: number): number => {
      const span = len + pads[i] + pads[i + 2] - dil[i] * (kernel[i] - 1) - 1;
      let o = (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
      // ONNX: with ceil_mode the last window must start inside the input or left padding.
      if (ceil && (o - 1) * strides[i] >= len + pads[i]) o--;
      return o;
    };
    const Ho = size(H, 0); const Wo = size(W, 1);
    if (Ho < 1 || Wo < 1) throw this.bad('output would be empty');
    // The engine computes output sizes without ceil_mode, so fold ceil_mode into extra end padding.
    const padEnd = (len: number, o: number, i: number): number => Math.max(pads[i + 2], (o - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1 - len - pads[i]);
    const epads: [number, number, number, number] = [pads[0], pads[1], padEnd(H, Ho, 0), padEnd(W, Wo, 1)];
    const out = this.tensor('u8', [N, Ho, Wo, C]);
    if (kind === 'maxpool') {
      this.ops.push({ op: 'maxpool', input: x.tensor, output: out, kernel: [kernel[0], kernel[1]], strides: [strides[0], strides[1]], pads: epads, dilations: [dil[0], dil[1]] });
    } else {
      if (dil[0] !== 1 || dil[1] !== 1) throw this.bad('dilated average pooling is not supported');
      const countIncludePad = attr(n, 'count_include_pad') === 1;
      if (countIncludePad && (epads[2] !== pads[2] || epads[3] !== pads[3])) {
        throw this.bad('ceil_mode together with count_include_pad is not supported');
      }
      this.ops.push({
        op: 'avgpool', input: x.tensor, output: out, kernel: [kernel[0], kernel[1]], strides: [strides[0], strides[1]], pads: epads,
        countIncludePad, inputScale: d!.scale, inputZeroPoint: d!.zp, outputScale: scale, outputZeroPoint: zp,
      });
    }
    return { tensor: out, shape: [N, C, Ho, Wo], layout: 'nhwc', signed: x.signed };
  }

  private emitBinary(p: Extract<Pending, { kind: 'binary' }>, scale: number, zp: number, signed: boolean): QTensor {
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
        if (aq.layout === 'nhwc' && bq.layout === 'plain') bq = this.toNhwc(bq);
        else { aq = this.toPlain(aq); bq = this.toPlain(bq); }
      }
    } else {
      throw this.bad(`cannot broadcast [${bq.shape}] against [${aq.shape}] (same shape, a scalar or a per-channel operand only)`);
    }
    const out = this.tensor('u8', this.storageShape(aq.shape, aq.layout));
    this.ops.push({
      op: p.op, a: aq.tensor, b: bq.tensor, output: out,
      aScale: a.scale, aZeroPoint: a.zp, bScale: b.scale, bZeroPoint: b.zp,
      outputScale: scale, outputZeroPoint: zp, clamp: quantizedClamp(p.lo, p.hi, scale, zp) as Clamp,
    });
    return { ...aq, tensor: out, signed };
  }
}

/** For messages: the model's operator types, in order of first appearance. */
export function opTypes(model: ModelProto): string[] {
  return [...new Set((model.graph?.node ?? []).map((n) => opLabel(n.opType ?? '?', n.domain ?? '')))];
}

export type { TensorProto };

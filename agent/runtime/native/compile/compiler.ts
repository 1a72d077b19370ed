// The driver: walks the graph in order, hands each node to its op family, and holds what every
// family shares (the plan being built, the value table, reading constants and quantization
// parameters). A pending Conv, Gemm or Add/Mul absorbs the Relu/Clip after it into its
// requantization clamp; the QuantizeLinear then emits one fused op through `emit`.
import {
  dims, tensorData, valueInfoShape, valueInfoType, DataType,
  type ModelProto, type NodeProto,
} from '../../../onnx/model.js';
import type { Plan, PlanDType, PlanOp, PlanTensor, WeightBuffer } from '../plan.js';
import { signFlipTable } from '../quant.js';
import { opLabel } from '../support.js';
import { emitConv, visitConv, qlinearConv } from './conv.js';
import { emitDeconv, visitConvTranspose } from './deconv.js';
import { emitEltwise, visitEltwise, qlinearEltwise, constOperand } from './eltwise.js';
import { emitGemm, visitGemm, qlinearMatMul } from './gemm.js';
import { concat, maxMin, pad, qlinearConcat, slice, split, transpose } from './copy.js';
import { batchNorm, foldConstant } from './fold.js';
import { reshape } from './layout.js';
import { emitLut, lut, clampOrUnary, unaryOnDeq, qlinearUnary } from './lut.js';
import { arithmetic, layerNormalization, matmulOfActivations, pow, reduceMean, resize, softmax, sqrt } from './float.js';
import { emitPool, visitPool, qlinearPool } from './pool.js';
import { quantizeLinear, dequantizeLinear, graphOutput } from './quantize.js';
import {
  kindName, UnsupportedUse,
  type CompiledModel, type Const, type ConstDeq, type Deq, type Pending, type QTensor, type Value,
} from './values.js';

/** Ops that take 16-bit activations (W8A16): see Compiler.refuseA16. */
const A16_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'Conv', 'Gemm', 'MatMul', 'Add', 'Mul', 'Sub', 'Div',
  'GlobalAveragePool', 'AveragePool', 'MaxPool', 'Relu', 'Clip', 'Sigmoid', 'Tanh', 'LeakyRelu', 'HardSigmoid', 'HardSwish',
  // Float inside (steps_a16_float.cc): Softmax, LayerNorm (also spelled out), MatMul of two activations.
  'Softmax', 'LayerNormalization', 'ReduceMean', 'Pow', 'Sqrt', 'Resize', 'ConvTranspose',
  'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout',
  // Data movement as it is (compile/copy.ts: u16 moved as byte pairs; no change of scale).
  'Transpose', 'Slice', 'Split', 'Concat']);
/** Element-wise ops on 16 bits: two activations (Add, Mul, Sub), or one and a scalar constant (a table). */
const A16_BINARY = new Set(['Add', 'Mul', 'Sub', 'Div']);

/** The activation width of a pending result's inputs. */
function pendingBits(p: Pending): 8 | 16 {
  if (p.kind === 'float' || p.kind === 'deferred') return p.bits ?? (p.kind === 'float' ? p.chain?.x.q.bits : undefined) ?? 8;
  const ins = p.kind === 'eltwise' ? [p.a, p.b] : [p.x];
  return ins.some((d) => d.q.bits === 16) ? 16 : 8;
}

export class Compiler {
  readonly tensors: PlanTensor[] = [];
  readonly ops: PlanOp[] = [];
  readonly weights: WeightBuffer[] = [];
  private readonly values = new Map<string, Value>();
  private readonly uses = new Map<string, number>();
  /** Names of the graph's outputs. */
  readonly graphOutputs = new Set<string>();
  /** The node being compiled, for messages and attributes. */
  node!: NodeProto;

  constructor(private readonly model: ModelProto) {}

  /** The default domain's opset version (semantics changed across versions, e.g. Softmax at 13). */
  get opset(): number {
    const o = this.model.opsetImport?.find((x) => !x.domain || x.domain === 'ai.onnx');
    return Number(o?.version ?? 13);
  }

  run(): CompiledModel {
    const g = this.model.graph!;
    for (const n of g.node ?? []) for (const i of n.input ?? []) if (i) this.uses.set(i, (this.uses.get(i) ?? 0) + 1);
    for (const o of g.output ?? []) {
      this.uses.set(o.name!, (this.uses.get(o.name!) ?? 0) + 1);
      this.graphOutputs.add(o.name!);
    }
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
        if (signed) q = lut(this, q, signFlipTable(), true);
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
      const { tensor, dtype, shape } = graphOutput(this, vo.name!, this.get(vo.name!));
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

  /** Each ONNX operator to its op family (named like the kernel families in native/src/kernels/). */
  private visit(n: NodeProto): void {
    const op = n.opType!;
    if (foldConstant(this)) return;
    this.refuseA16(op);
    switch (op) {
      case 'BatchNormalization': return batchNorm(this);
      case 'Concat': return concat(this);
      case 'QLinearConcat': return qlinearConcat(this);
      case 'Split': return split(this);
      case 'Slice': return slice(this);
      case 'Transpose': return transpose(this);
      case 'Pad': return pad(this);
      case 'Max': case 'Min': return maxMin(this);
      case 'QuantizeLinear': return quantizeLinear(this);
      case 'DequantizeLinear': return dequantizeLinear(this);
      case 'Conv': return visitConv(this);
      case 'ConvTranspose': return visitConvTranspose(this);
      case 'MatMul': return this.input(1)?.k === 'dq' ? matmulOfActivations(this) : visitGemm(this);
      case 'Gemm': return visitGemm(this);
      case 'Add': case 'Mul': case 'Sub': case 'Div': return arithmetic(this, op) ? undefined : visitEltwise(this);
      case 'Softmax': return softmax(this);
      case 'LayerNormalization': return layerNormalization(this);
      case 'ReduceMean': return reduceMean(this);
      case 'Pow': return pow(this);
      case 'Sqrt': return sqrt(this);
      case 'Resize': return resize(this);
      case 'Relu': case 'Clip': return clampOrUnary(this);
      case 'Sigmoid': case 'Tanh': case 'LeakyRelu': case 'HardSigmoid': case 'HardSwish':
        return unaryOnDeq(this, op);
      case 'MaxPool': case 'AveragePool': case 'GlobalAveragePool': return visitPool(this);
      case 'Reshape': case 'Flatten': case 'Squeeze': case 'Unsqueeze': case 'Identity': case 'Dropout':
        return reshape(this);
      case 'QLinearConv': return qlinearConv(this);
      case 'QLinearMatMul': return qlinearMatMul(this);
      case 'QLinearAdd': case 'QLinearMul': return qlinearEltwise(this, op === 'QLinearAdd' ? 'add' : 'mul');
      case 'QLinearGlobalAveragePool': case 'QLinearAveragePool': return qlinearPool(this);
      case 'QLinearSigmoid': case 'QLinearLeakyRelu': return qlinearUnary(this, op === 'QLinearSigmoid' ? 'Sigmoid' : 'LeakyRelu');
      default: throw this.bad('not implemented');
    }
  }

  /**
   * 16-bit activations (W8A16) reach only the op families that compute them (engine
   * steps_a16.cc, steps_a16_float.cc; A16_OPS): Conv, Gemm/MatMul, Add and Mul of two
   * activations or with a uint16 constant, unary functions and arithmetic with a scalar
   * (65536-entry tables), pooling, ConvTranspose, Resize, Softmax, LayerNorm, the MatMul of two
   * activations, moves
   * and reshapes, and the Q/DQ around them. Any other op with a 16-bit input is refused here,
   * by name, so no 8-bit path ever reads one (and lut() refuses an 8-bit table on a 16-bit
   * tensor, copyOp a requantizing or padding move of one).
   */
  private refuseA16(op: string): void {
    const sixteen = (v: Value | undefined) => (v?.k === 'q' && v.q.bits === 16) || (v?.k === 'dq' && v.d.q.bits === 16);
    const inputs = (this.node.input ?? []).map((name) => (name ? this.values.get(name) : undefined));
    if (!inputs.some(sixteen)) return;
    const scalar = (v: Value | undefined) => (v?.k === 'const' || v?.k === 'cdq') && v.c.data.length === 1;
    const operand = (v: Value | undefined) => v?.k === 'dq' || (v?.k === 'cdq' && v.c.dtype === DataType.UINT16);
    // A LayerNorm chain's Sub (x - mean) reads a pending result: the chain checks itself.
    const chain = inputs.some((v) => v?.k === 'pending');
    const ok = A16_OPS.has(op) &&
      !(A16_BINARY.has(op) && !chain && !((operand(inputs[0]) && operand(inputs[1]) && op !== 'Div') || scalar(inputs[0]) || scalar(inputs[1])));
    if (!ok) {
      throw this.bad('16-bit activations (W8A16) are not computed by the native engine for this op yet (it runs Conv, ConvTranspose, Gemm, MatMul, Add, Sub and Mul, unary functions and scalar arithmetic, pooling, Resize, Softmax, LayerNorm and moves on them; not Pad, Max or Min, nor Div of two activations); ONNX Runtime runs them');
    }
  }

  /** Emits the fused op a pending result becomes once its output scale is known. */
  emit(p: Pending, scale: number, zp: number, signed: boolean, bits: 8 | 16 = 8): QTensor {
    const saved = this.node;
    this.node = p.node;
    try {
      const inBits = pendingBits(p);
      if (inBits !== bits) throw this.bad(`its ${inBits}-bit inputs cannot give a ${bits}-bit result (quantize both sides to the same width)`);
      switch (p.kind) {
        case 'conv': return emitConv(this, p, scale, zp, signed);
        case 'deconv': return emitDeconv(this, p, scale, zp, signed);
        case 'gemm': return emitGemm(this, p, scale, zp, signed);
        case 'maxpool': case 'avgpool': return emitPool(this, p, scale, zp, signed);
        case 'eltwise': return emitEltwise(this, p, scale, zp, signed);
        case 'lut': return emitLut(this, p, scale, zp, signed);
        case 'float':
        case 'deferred': return p.emit(scale, zp, signed);
      }
    } finally {
      this.node = saved;
    }
  }

  // ---- plumbing ---------------------------------------------------------------------------

  bad(why: string): UnsupportedUse {
    const n = this.node;
    return new UnsupportedUse(`${opLabel(n.opType ?? '?', n.domain ?? '')} '${n.name ?? ''}'`, why);
  }

  get(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw this.bad(`input ${name} is not produced by an earlier node (graph not topologically sorted?)`);
    return v;
  }

  input(i: number): Value | undefined {
    const name = this.node.input?.[i];
    return name ? this.get(name) : undefined;
  }

  set(v: Value, i = 0): void {
    this.values.set(this.node.output![i], v);
  }

  tensor(dtype: PlanDType, shape: number[], viewOf?: number): number {
    const base = viewOf === undefined ? undefined : (this.tensors[viewOf].viewOf ?? viewOf);
    this.tensors.push(base === undefined ? { dtype, shape } : { dtype, shape, viewOf: base });
    return this.tensors.length - 1;
  }

  weight(w: WeightBuffer): number {
    this.weights.push(w);
    return this.weights.length - 1;
  }

  constValue(i: number, what: string): Const {
    const v = this.input(i);
    if (!v || v.k !== 'const') throw this.bad(`${what} must be a constant initializer`);
    return v.c;
  }

  /** A scalar constant (scale or zero point); a missing zero point is 0 of type uint8. */
  scalar(i: number, what: string): { value: number; dtype: number } {
    if (!this.node.input?.[i]) return { value: 0, dtype: DataType.UINT8 };
    const c = this.constValue(i, what);
    if (c.data.length !== 1) throw this.bad(`${what} must be a single value (per-tensor), got ${c.data.length}`);
    return { value: Number(c.data[0]), dtype: c.dtype };
  }

  /**
   * Scale + zero point of a quantized activation, zero point moved into the u8 domain; with
   * `a16` (QuantizeLinear and DequantizeLinear) a uint16 zero point is taken too, as is.
   */
  qparams(si: number, zi: number, a16 = false): { scale: number; zp: number; signed: boolean; bits: 8 | 16 } {
    const s = this.scalar(si, 'scale');
    const z = this.scalar(zi, 'zero point');
    if (z.dtype === DataType.INT16 || (z.dtype === DataType.UINT16 && !a16)) {
      throw this.bad(`${z.dtype === DataType.INT16 ? 'int16' : '16-bit'} activations are not computed by the native engine here (it takes uint16 ones, W8A16 from \`edge-model quantize --activation-bits 16\`, through QuantizeLinear/DequantizeLinear); ONNX Runtime runs them`);
    }
    if (z.dtype !== DataType.UINT8 && z.dtype !== DataType.INT8 && z.dtype !== DataType.UINT16) throw this.bad('activations must be uint8, int8 or uint16');
    if (!(s.value > 0) || !Number.isFinite(s.value)) throw this.bad(`scale must be a positive number, got ${s.value}`);
    if (z.dtype === DataType.UINT16) return { scale: s.value, zp: z.value, signed: false, bits: 16 };
    const signed = z.dtype === DataType.INT8;
    return { scale: s.value, zp: z.value + (signed ? 128 : 0), signed, bits: 8 };
  }

  /** A constant quantized with per-tensor or per-axis scale/zero point (weights, biases). */
  constDeq(c: Const, si: number, zi: number, axis: number): ConstDeq {
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

  /** Operand i as a dequantized activation (a constant operand becomes a constant tensor). */
  deq(i: number): Deq {
    const v = this.input(i);
    if (v?.k === 'dq') return v.d;
    if (v?.k === 'cdq') return constOperand(this, v.c);
    throw this.bad(`input ${i} must come from DequantizeLinear (got ${kindName(v)})`);
  }

  weightDeq(i: number): ConstDeq {
    const v = this.input(i);
    if (v?.k === 'cdq') return v.c;
    throw this.bad(`weights (input ${i}) must be a DequantizeLinear of an int8/uint8 initializer`);
  }

  /** QOperator form: input i with its scale and zero point at inputs si and zi. */
  qdeq(i: number, si: number, zi: number): Deq {
    const v = this.input(i);
    const { scale, zp } = this.qparams(si, zi);
    if (v?.k === 'q') return { q: v.q, scale, zp };
    if (v?.k === 'const') return constOperand(this, { ...v.c, scales: [scale], zps: [v.c.dtype === DataType.INT8 ? zp - 128 : zp], axis: 0 });
    throw this.bad(`input ${i} must be a quantized tensor (got ${kindName(v)})`);
  }

  /** A float result that waits for its QuantizeLinear (which fixes the output scale). */
  pending(p: Pending): void {
    if ((p.kind === 'float' || p.kind === 'deferred') && p.bits === undefined) {
      const wide = (this.node.input ?? []).some((name) => {
        const v = name ? this.values.get(name) : undefined;
        return (v?.k === 'dq' && v.d.q.bits === 16) || (v?.k === 'q' && v.q.bits === 16);
      });
      if (wide) p = { ...p, bits: 16 };
    }
    const out = this.node.output![0];
    if ((this.uses.get(out) ?? 0) !== 1) {
      throw this.bad(`its float output ${out} must feed exactly one QuantizeLinear (or Relu/Clip then QuantizeLinear)`);
    }
    this.set({ k: 'pending', p });
  }
}

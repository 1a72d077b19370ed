// What the compiler tracks for each ONNX value, shared by the driver and every op family.
//
// Every ONNX value is one of: a quantized tensor in the arena ('q'), a float value that is
// exactly the dequantization of one ('dq'), a float arena tensor ('f', graph inputs), a constant
// ('const'), a dequantized constant ('cdq', weights), or a float result still waiting for the
// QuantizeLinear that gives it an output scale ('pending').
import type { NodeProto, TypedArray } from '../../../onnx/model.js';
import type { Plan, WeightBuffer } from '../plan.js';

export type Layout = 'plain' | 'nhwc' | 'flat-hwc';

/** A u8 tensor in the arena; `shape` is the ONNX (logical) shape, storage follows `layout`. */
export interface QTensor {
  tensor: number;
  shape: number[];
  layout: Layout;
  /** For 'flat-hwc': the [C, H, W] of the NHWC map it was flattened from. */
  chw?: [number, number, number];
  /** The ONNX element type was int8 (storage holds value + 128). */
  signed: boolean;
  /** 16: a uint16 activation of a W8A16 model (storage dtype 'u16'); absent: 8 bits. */
  bits?: 16;
}
/** A float value equal to (q - zp) * scale; zp in the engine's u8 domain. */
export interface Deq { q: QTensor; scale: number; zp: number }
export interface Const { data: TypedArray; shape: number[]; dtype: number }
/** A dequantized constant: per-tensor (1 scale) or per-axis scales and zero points (raw domain). */
export interface ConstDeq { data: TypedArray; shape: number[]; dtype: number; scales: number[]; zps: number[]; axis: number }

/** A float result waiting for its output scale, by op family (the kernel family that will run it). */
export type Pending =
  | { kind: 'conv'; node: NodeProto; x: Deq; w: ConstDeq; b?: Value; lo: number; hi: number }
  | { kind: 'deconv'; node: NodeProto; x: Deq; w: ConstDeq; b?: Value; lo: number; hi: number }
  | { kind: 'gemm'; node: NodeProto; x: Deq; w: ConstDeq; transB: boolean; b?: Value; lo: number; hi: number }
  | { kind: 'maxpool' | 'avgpool'; node: NodeProto; x: Deq; global: boolean }
  | { kind: 'eltwise'; node: NodeProto; op: 'add' | 'mul'; a: Deq; b: Deq; lo: number; hi: number }
  | { kind: 'lut'; node: NodeProto; fn: (x: number) => number; x: Deq }
  /** A float-inside op (compile/float.ts) that needs only its output scale to be emitted. */
  | { kind: 'float'; node: NodeProto; emit: (scale: number, zp: number, signed: boolean) => QTensor; chain?: LayerNormChain; bits?: 16 }
  /** Data movement (Concat, Max...) whose ops are written once the output scale is known. */
  | { kind: 'deferred'; node: NodeProto; emit: (scale: number, zp: number, signed: boolean) => QTensor; bits?: 16 };

/** How far a decomposed LayerNorm (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add) has got. */
export interface LayerNormChain {
  stage: 'mean' | 'centred' | 'squared' | 'variance' | 'varianceEps' | 'std' | 'normalised' | 'scaled' | 'affine';
  x: Deq;
  epsilon?: number;
  gamma?: Float64Array;
  beta?: Float64Array;
}

export type Value =
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

export const numel = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** What a value is, for messages ("got a float tensor that is not quantized"). */
export function kindName(v: Value | undefined): string {
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

/** The storage element type of a quantized tensor. */
export const qdtype = (q: QTensor): 'u8' | 'u16' => (q.bits === 16 ? 'u16' : 'u8');

export const ints = (v: unknown, d: number[]): number[] => (Array.isArray(v) ? (v as number[]) : d);

// The plan the compiler hands to the C++ engine: tensors (shapes in storage order), an ordered
// list of fused quantized ops, and weight buffers referenced by index. The engine checks every
// field again (it never trusts this side), sizes one arena from it and pre-packs the weights.

/**
 * Storage element type. Activations inside the plan are u8 (int8 tensors are shifted by 128),
 * or u16 in W8A16 models, whose quantize, dequantize, conv, gemm, add, mul, lut and global
 * avgpool ops take u16 tensors and 16-bit zero points and clamps (native/src/engine/steps_a16.cc).
 */
export type PlanDType = 'u8' | 's8' | 'i32' | 'f32' | 'u16';

export interface PlanTensor {
  dtype: PlanDType;
  /** Dimensions in storage order (NHWC for feature maps). */
  shape: number[];
  /** When set, this tensor shares the storage of that (earlier) tensor: a free reshape. */
  viewOf?: number;
  /** When set, the tensor holds this weight buffer's bytes (a constant operand, filled at load). */
  constant?: number;
}

/** A u8 clamp folded into requantization (fused Relu / Clip); [0, 255] when nothing is fused. */
export type Clamp = [number, number];

export type PlanOp =
  | { op: 'quantize'; input: number; output: number; scale: number; zeroPoint: number; nchwToNhwc: boolean }
  | { op: 'dequantize'; input: number; output: number; scale: number; zeroPoint: number; nhwcToNchw: boolean }
  | {
      op: 'conv';
      input: number; output: number;
      /** Weight index: s8 [M, C/group, KH, KW] (ONNX OIHW), zero point already subtracted. */
      weights: number;
      /** Weight index: i32 [M]. */
      bias: number;
      /** Weight index: f32 [M], input_scale * weight_scale[m] / output_scale. */
      multipliers: number;
      inputZeroPoint: number; outputZeroPoint: number; clamp: Clamp;
      kernel: [number, number]; strides: [number, number];
      /** top, left, bottom, right */
      pads: [number, number, number, number];
      dilations: [number, number]; group: number;
      /**
       * A residual Add fused into the output stage (compile/fuse.ts): the conv's own u8 result
       * (scale convScale, zero point outputZeroPoint, clamp) is added to the tensor residual as
       * the 'add' op would, and `output` holds the sum (addScale, addZeroPoint, addClamp).
       */
      residual?: number; residualScale?: number; residualZeroPoint?: number; convScale?: number;
      addScale?: number; addZeroPoint?: number; addClamp?: Clamp;
    }
  | {
      op: 'gemm';
      input: number; output: number;
      /** Weight index: s8 [N, K] (one row per output). */
      weights: number; bias: number; multipliers: number;
      inputZeroPoint: number; outputZeroPoint: number; clamp: Clamp;
    }
  | {
      op: 'maxpool';
      input: number; output: number;
      kernel: [number, number]; strides: [number, number]; pads: [number, number, number, number];
      dilations: [number, number];
    }
  | {
      op: 'avgpool';
      input: number; output: number;
      kernel: [number, number]; strides: [number, number]; pads: [number, number, number, number];
      countIncludePad: boolean;
      inputScale: number; inputZeroPoint: number; outputScale: number; outputZeroPoint: number;
    }
  | {
      op: 'add' | 'mul';
      a: number; b: number; output: number;
      aScale: number; aZeroPoint: number; bScale: number; bZeroPoint: number;
      outputScale: number; outputZeroPoint: number; clamp: Clamp;
    }
  | { op: 'lut'; input: number; output: number; /** Weight index: u8 [256], or u16 [65536] for u16 tensors. */ table: number }
  | { op: 'transpose'; input: number; output: number; /** Output dim i is input dim perm[i] (u8 tensors). */ perm: number[] }
  | FloatInsideOp
  | CopyOp
  | {
      op: 'max' | 'min';
      /** Same rank as the output; a dimension of 1 broadcasts. */
      a: number; b: number; output: number;
      aScale: number; aZeroPoint: number; bScale: number; bZeroPoint: number; outputScale: number; outputZeroPoint: number;
    };

/**
 * Ops that run in float inside the step (mixed precision, between a dequantize and a quantize),
 * the MatMul of two activations and ConvTranspose; compiled by compile/float.ts and
 * compile/deconv.ts, run by steps_float.cc, steps_qmatmul.cc and steps_deconv.cc.
 */
export type FloatInsideOp =
  | {
      /** Softmax along the middle dimension of the storage viewed as [outer, axis, inner]. */
      op: 'softmax'; input: number; output: number; outer: number; axis: number; inner: number;
      inputScale: number; outputScale: number; outputZeroPoint: number;
    }
  | {
      /** Normalisation over the innermost storage axis; gamma and beta: weight indices, f32 [len]. */
      op: 'layernorm'; input: number; output: number; gamma: number; beta: number; epsilon: number;
      inputScale: number; inputZeroPoint: number; outputScale: number; outputZeroPoint: number;
    }
  | {
      /** NHWC u8 in and out; source rows/columns per output row/column (ONNX coordinate rules resolved). */
      op: 'resize'; input: number; output: number; linear: boolean;
      rowsFrom: number[]; colsFrom: number[];
      /** linear only: the second neighbours, and weight indices (f32) of the second neighbour. */
      rowsTo?: number[]; colsTo?: number[]; rowWeights?: number; colWeights?: number;
      inputScale: number; inputZeroPoint: number; outputScale: number; outputZeroPoint: number;
    }
  | {
      /** [batch, M, K] x [batch, K, N] of two u8 activations; a broadcast operand has one batch. */
      op: 'qmatmul'; a: number; b: number; output: number; batch: number; M: number; K: number; N: number;
      aBroadcast: boolean; bBroadcast: boolean; aZeroPoint: number; bZeroPoint: number;
      /** a_scale * b_scale / output_scale in float32. */
      multiplier: number; outputZeroPoint: number; clamp: Clamp;
    }
  | {
      /** ConvTranspose on NHWC u8 (compile/deconv.ts, steps_deconv.cc). */
      op: 'deconv';
      input: number; output: number;
      /** Weight index: s8 [C, M/group, KH, KW] (ONNX layout), zero point already subtracted. */
      weights: number; bias: number; multipliers: number;
      inputZeroPoint: number; outputZeroPoint: number; clamp: Clamp;
      kernel: [number, number]; strides: [number, number];
      /** top, left, bottom, right */
      pads: [number, number, number, number];
      dilations: [number, number]; outputPadding: [number, number]; group: number;
    };

/**
 * Rectangular regions of inputs copied into one output (Concat, Split, Slice, Transpose, Pad).
 * Per region r and output dimension d (flattened r * rank + d): it writes count elements from
 * output index at, reading input dimension perm from index start in steps of step (0 repeats an element; may be
 * negative). A region is requantized to outputScale/outputZeroPoint when requant[r] is 1. With
 * fill, the whole output is first set to that byte.
 */
export interface CopyOp {
  op: 'copy';
  output: number;
  inputs: number[];
  count: number[]; start: number[]; step: number[]; at: number[]; perm: number[];
  requant: number[];
  inScales?: number[]; inZeroPoints?: number[]; outputScale?: number; outputZeroPoint?: number;
  fill?: number;
}

export interface PlanIO {
  name: string;
  tensor: number;
}

export interface Plan {
  tensors: PlanTensor[];
  ops: PlanOp[];
  inputs: PlanIO[];
  outputs: PlanIO[];
}

export type WeightBuffer = Int8Array | Uint8Array | Int32Array | Float32Array | Uint16Array;

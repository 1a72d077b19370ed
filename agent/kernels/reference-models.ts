// Single-operator ONNX models (built with agent/onnx/model.ts) for comparing the kernels
// with ONNX Runtime, in tests and in the benchmark. Activations are graph inputs; weights,
// scales and zero points are initializers, as in a quantized model file.
import { DataType, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo } from '../onnx/model.js';

const scalarF = (name: string, v: number) => makeTensor(name, [], new Float32Array([v]));
const zpTensor = (name: string, v: number | Int8Array | Uint8Array, int8: boolean, dims: number[] = []) =>
  typeof v === 'number' ? makeTensor(name, dims, int8 ? new Int8Array([v]) : new Uint8Array([v])) : makeTensor(name, dims, v);

export interface QLinearMatMulModel {
  M: number; K: number; N: number;
  aInt8?: boolean;
  aScale: number; aZeroPoint: number;
  b: Int8Array; bScale: number; bZeroPoint: number;
  yScale: number; yZeroPoint: number;
}

/** QLinearMatMul(a[M,K], b[K,N]) -> uint8 (int8 when aInt8) y[M,N]; input "a", output "y". */
export function qlinearMatMulModel(o: QLinearMatMulModel): Uint8Array {
  const at = o.aInt8 ? DataType.INT8 : DataType.UINT8;
  return encodeModel(makeModel({
    name: 'qlinear_matmul',
    node: [makeNode('QLinearMatMul', ['a', 'a_scale', 'a_zp', 'b', 'b_scale', 'b_zp', 'y_scale', 'y_zp'], ['y'])],
    initializer: [
      scalarF('a_scale', o.aScale), zpTensor('a_zp', o.aZeroPoint, !!o.aInt8),
      makeTensor('b', [o.K, o.N], o.b), scalarF('b_scale', o.bScale), zpTensor('b_zp', o.bZeroPoint, true),
      scalarF('y_scale', o.yScale), zpTensor('y_zp', o.yZeroPoint, !!o.aInt8),
    ],
    input: [makeValueInfo('a', at, [o.M, o.K])],
    output: [makeValueInfo('y', at, [o.M, o.N])],
  }, 13));
}

/** MatMulInteger(a uint8 [M,K], b int8 [K,N]) -> int32; input "a", output "y". */
export function matMulIntegerModel(M: number, K: number, N: number, b: Int8Array, aZeroPoint: number, bZeroPoint: number): Uint8Array {
  return encodeModel(makeModel({
    name: 'matmul_integer',
    node: [makeNode('MatMulInteger', ['a', 'b', 'a_zp', 'b_zp'], ['y'])],
    initializer: [makeTensor('b', [K, N], b), zpTensor('a_zp', aZeroPoint, false), zpTensor('b_zp', bZeroPoint, true)],
    input: [makeValueInfo('a', DataType.UINT8, [M, K])],
    output: [makeValueInfo('y', DataType.INT32, [M, N])],
  }, 13));
}

export interface QLinearConvModel {
  C: number; H: number; W: number; OC: number;
  kernel: [number, number]; strides: [number, number]; pads: [number, number, number, number];
  dilations: [number, number]; groups: number;
  xScale: number; xZeroPoint: number;
  w: Int8Array; wScales: Float32Array; wZeroPoint: number;
  yScale: number; yZeroPoint: number;
  bias?: Int32Array;
}

/** QLinearConv on uint8 NCHW x [1,C,H,W] with int8 weights; input "x", output "y". */
export function qlinearConvModel(o: QLinearConvModel): Uint8Array {
  const OH = Math.floor((o.H + o.pads[0] + o.pads[2] - (o.dilations[0] * (o.kernel[0] - 1) + 1)) / o.strides[0]) + 1;
  const OW = Math.floor((o.W + o.pads[1] + o.pads[3] - (o.dilations[1] * (o.kernel[1] - 1) + 1)) / o.strides[1]) + 1;
  const perChannel = o.wScales.length > 1;
  const inputs = ['x', 'x_scale', 'x_zp', 'w', 'w_scale', 'w_zp', 'y_scale', 'y_zp', ...(o.bias ? ['bias'] : [])];
  return encodeModel(makeModel({
    name: 'qlinear_conv',
    node: [makeNode('QLinearConv', inputs, ['y'], {
      kernel_shape: o.kernel, strides: o.strides, pads: o.pads, dilations: o.dilations, group: o.groups,
    })],
    initializer: [
      scalarF('x_scale', o.xScale), zpTensor('x_zp', o.xZeroPoint, false),
      makeTensor('w', [o.OC, o.C / o.groups, o.kernel[0], o.kernel[1]], o.w),
      makeTensor('w_scale', perChannel ? [o.OC] : [], o.wScales),
      perChannel ? makeTensor('w_zp', [o.OC], new Int8Array(o.OC).fill(o.wZeroPoint)) : zpTensor('w_zp', o.wZeroPoint, true),
      scalarF('y_scale', o.yScale), zpTensor('y_zp', o.yZeroPoint, false),
      ...(o.bias ? [makeTensor('bias', [o.OC], o.bias)] : []),
    ],
    input: [makeValueInfo('x', DataType.UINT8, [1, o.C, o.H, o.W])],
    output: [makeValueInfo('y', DataType.UINT8, [1, o.OC, OH, OW])],
  }, 13));
}

/** QuantizeLinear (x float -> y) or DequantizeLinear (x -> float y) along `axis`. */
export function quantizeModel(op: 'QuantizeLinear' | 'DequantizeLinear', shape: number[], scales: Float32Array,
  zeroPoints: Uint8Array | Int8Array, axis: number): Uint8Array {
  const qt = zeroPoints instanceof Int8Array ? DataType.INT8 : DataType.UINT8;
  const dims = scales.length > 1 ? [scales.length] : [];
  return encodeModel(makeModel({
    name: op.toLowerCase(),
    node: [makeNode(op, ['x', 's', 'z'], ['y'], scales.length > 1 ? { axis } : {})],
    initializer: [makeTensor('s', dims, scales), makeTensor('z', dims, zeroPoints)],
    input: [makeValueInfo('x', op === 'QuantizeLinear' ? DataType.FLOAT : qt, shape)],
    output: [makeValueInfo('y', op === 'QuantizeLinear' ? qt : DataType.FLOAT, shape)],
  }, 13));
}

/** NCHW [1,C,H,W] <-> NHWC [1,H,W,C] for single images. */
export function nchwToNhwc<T extends Uint8Array | Int8Array | Int32Array>(x: T, C: number, H: number, W: number): T {
  const y = new (x.constructor as { new (n: number): T })(x.length);
  for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) y[i * C + c] = x[c * H * W + i];
  return y;
}
export function nhwcToNchw<T extends Uint8Array | Int8Array | Int32Array>(x: T, C: number, H: number, W: number): T {
  const y = new (x.constructor as { new (n: number): T })(x.length);
  for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) y[c * H * W + i] = x[i * C + c];
  return y;
}

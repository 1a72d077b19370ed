// Which ONNX operators the native int8 engine understands, and the cheap check the runtime's
// 'auto' choice uses before it tries to compile a model.
import type { ModelProto } from '../../onnx/model.js';

/** Operators of the default ONNX domain the compiler handles (in QDQ or QOperator form). */
const DEFAULT_DOMAIN = new Set([
  'QuantizeLinear', 'DequantizeLinear',
  'Conv', 'Gemm', 'MatMul', 'Add', 'Mul',
  'Relu', 'Clip', 'Sigmoid', 'Tanh', 'LeakyRelu', 'HardSigmoid', 'HardSwish',
  'MaxPool', 'AveragePool', 'GlobalAveragePool',
  'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout',
  'QLinearConv', 'QLinearMatMul',
  // Float inside (compile/float.ts): int8 in and out, float in the step.
  'Softmax', 'LayerNormalization', 'Resize', 'Sub', 'Div',
  'ReduceMean', 'Pow', 'Sqrt', // only as the spelled-out LayerNorm
  'ConvTranspose',
  // Constant shape arithmetic folded at load, and BatchNormalization (compile/fold.ts).
  'Constant', 'Shape', 'Gather', 'Cast', 'ConstantOfShape', 'Concat', 'Slice', 'Range', 'Equal', 'Where',
  'BatchNormalization',
  // Data movement and Max/Min on int8 (compile/copy.ts).
  'Split', 'Transpose', 'Pad', 'Max', 'Min',
]);

/** ONNX Runtime's contrib operators (domain com.microsoft) the compiler handles. */
const MICROSOFT_DOMAIN = new Set([
  // ONNX Runtime's quantizer writes these with use_qdq_contrib_ops (and for 16 bits, which the
  // compiler refuses by name: compile/compiler.ts qparams).
  'QuantizeLinear', 'DequantizeLinear',
  'QLinearAdd', 'QLinearMul', 'QLinearGlobalAveragePool', 'QLinearAveragePool',
  'QLinearSigmoid', 'QLinearLeakyRelu',
  'QLinearConcat',
]);

export function isSupportedOp(opType: string, domain: string): boolean {
  if (domain === '' || domain === 'ai.onnx') return DEFAULT_DOMAIN.has(opType);
  if (domain === 'com.microsoft') return MICROSOFT_DOMAIN.has(opType);
  return false;
}

/** The name an operator is reported under: plain for the default domain, domain-qualified otherwise. */
export function opLabel(opType: string, domain: string): string {
  return domain === '' || domain === 'ai.onnx' ? opType : `${domain}.${opType}`;
}

/** Operator types in the model that the engine does not implement (sorted, each once). */
export function unsupportedOps(model: ModelProto): string[] {
  const out = new Set<string>();
  for (const n of model.graph?.node ?? []) {
    const domain = n.domain ?? '';
    if (!isSupportedOp(n.opType ?? '', domain)) out.add(opLabel(n.opType ?? '?', domain));
  }
  return [...out].sort();
}

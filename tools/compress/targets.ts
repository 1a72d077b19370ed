// What a quantized model is written for (`edge-model quantize --target`); a module of its own
// so the CLI can list the choices without loading ONNX Runtime.

/**
 * native, ort-arm: int8 weights (exact on the native engine, on ONNX Runtime on ARM and on x86
 * with VNNI). ort-x86: uint8 weights, which ONNX Runtime computes exactly on every x86 CPU (its
 * u8 x s8 kernels saturate at int16 without VNNI). auto: int8 when the native engine runs the
 * whole graph (edge-agent then also runs it exactly in ONNX Runtime), uint8 otherwise.
 */
export const QUANT_TARGETS = ['auto', 'native', 'ort-x86', 'ort-arm'] as const;
export type QuantTarget = (typeof QUANT_TARGETS)[number];


// The native int8 backend: compile an ONNX model into an engine plan and run it.
import type { ModelProto } from '../../onnx/model.js';
import { EdgeError, Errors } from '../../errors.js';
import { compileModel } from './compile/index.js';

export { NativeBackend, type NativeBackendOptions } from './native-backend.js';
export { compileModel, unsupportedError, type CompiledModel } from './compile/index.js';
export { createEngine, kernelVariant, type NativeEngine, type EngineFacts } from './engine-addon.js';
export { unsupportedOps, isSupportedOp } from './support.js';

/**
 * Whether the whole graph runs on the native engine (the runtime's 'auto' choice): every
 * operator is implemented and every use of it fits a fused kernel. Does not need the addon.
 */
export function canRunNatively(model: ModelProto): { ok: boolean; unsupported: string[] } {
  try {
    compileModel(model);
    return { ok: true, unsupported: [] };
  } catch (err) {
    if (err instanceof EdgeError && err.code === Errors.MODEL_UNSUPPORTED_OPS.code) {
      return { ok: false, unsupported: (err.details as { unsupported: string[] }).unsupported };
    }
    return { ok: false, unsupported: [`the model could not be compiled: ${(err as Error).message}`] };
  }
}

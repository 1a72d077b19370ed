// Compiles an int8 ONNX model (QDQ or QOperator form) into the native engine's plan.
//
// compiler.ts walks the graph and holds what every op family shares; each other module is one op
// family, named like the kernel family that runs it (native/src/kernels/, and the engine steps in
// native/src/engine/steps_*.cc): quantize, conv, gemm, eltwise, lut, pool, plus layout for the
// NHWC moves and views that need no kernel. Feature maps live as NHWC; a 4D input is transposed
// once when it is quantized, and a flatten of an NHWC map feeding a Gemm permutes the Gemm's
// weights instead of the data.
import type { ModelProto } from '../../../onnx/model.js';
import { EdgeError, Errors } from '../../../errors.js';
import { opLabel, unsupportedOps } from '../support.js';
import { Compiler } from './compiler.js';
import { fuseUnaryProducts } from './fuse-unary.js';
import { fuseResidualAdds } from './fuse.js';
import { UnsupportedUse, type CompiledModel } from './values.js';

export { UnsupportedUse, type CompiledModel } from './values.js';
export type { TensorProto } from '../../../onnx/model.js';

export interface CompileOptions {
  /** Plan-level fusions (compile/fuse.ts); false keeps one op per fused ONNX pattern (tests). */
  fuse?: boolean;
}

/** Compiles the model or throws EDGE_MODEL_UNSUPPORTED_OPS naming what is not supported. */
export function compileModel(model: ModelProto, what = 'model', options: CompileOptions = {}): CompiledModel {
  const unsupported = unsupportedOps(model);
  if (unsupported.length) throw unsupportedError(what, unsupported);
  try {
    const compiled = fuseUnaryProducts(new Compiler(model).run()); // SiLU (Sigmoid then Mul): one table
    return options.fuse === false ? compiled : { ...compiled, plan: fuseResidualAdds(compiled.plan) };
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

/** For messages: the model's operator types, in order of first appearance. */
export function opTypes(model: ModelProto): string[] {
  return [...new Set((model.graph?.node ?? []).map((n) => opLabel(n.opType ?? '?', n.domain ?? '')))];
}

// ONNX Runtime as a reference for int8 results, only where it is exact. On x86 without VNNI its
// u8 x s8 kernels saturate at int16 (agent/onnx/int8-weights.ts); the same model with uint8
// weights runs through its u8 x u8 kernels, exact on every CPU. So `exact` is the reference a
// test may require agreement with anywhere, and `plain` (the model as given) only where
// `plainIsExact` says this CPU computes it exactly.
import * as ort from 'onnxruntime-node';
import { decodeModel } from '../../agent/onnx/model.js';
import { modelRuns } from '../../tools/compress/ort-session.js';

export interface OrtReference {
  exact: ort.InferenceSession;
  plain: ort.InferenceSession;
  plainIsExact: boolean;
  /** What ONNX Runtime does on this CPU, in words (for the test's messages). */
  why: string;
  release(): Promise<void>;
}

export async function ortReference(bytes: Uint8Array): Promise<OrtReference> {
  const runs = modelRuns(decodeModel(bytes));
  const exact = await ort.InferenceSession.create(runs.exact);
  const plain = await ort.InferenceSession.create(runs.asIs);
  return {
    exact, plain, plainIsExact: !runs.differs, why: runs.why,
    async release() { await exact.release(); await plain.release(); },
  };
}

/** The largest |a - b| in units of step. */
export function worstSteps(a: ArrayLike<number>, b: ArrayLike<number>, step: number): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / step);
  return worst;
}

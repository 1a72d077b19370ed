// ONNX Runtime sessions for the toolkit (calibration, evaluation, comparison), with failures
// turned into errors that name the model and say what went wrong.
import * as ort from 'onnxruntime-node';
import { encodeModel, type ModelProto } from '../../agent/onnx/model.js';
import { ortCpu, ortInt8Form } from '../../agent/runtime/ort-int8.js';
import { ORT_SAFE_WEIGHT } from '../../agent/onnx/int8-weights.js';
import { ToolErrors } from './errors.js';

export type Feeds = Record<string, ort.Tensor>;

export async function openSession(bytes: Uint8Array, what: string): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2, interOpNumThreads: 1, logSeverityLevel: 3 });
  } catch (err) {
    throw ToolErrors.MODEL_INVALID(`ONNX Runtime cannot load ${what}: ${firstLine(err)}`);
  }
}

export async function runSession(session: ort.InferenceSession, feeds: Feeds, what: string, outputs?: string[]): Promise<ort.InferenceSession.OnnxValueMapType> {
  try {
    return outputs ? await session.run(feeds, outputs) : await session.run(feeds);
  } catch (err) {
    const shapes = Object.entries(feeds).map(([k, v]) => `${k}: (${v.dims.join(', ')})`).join(', ');
    throw ToolErrors.CALIB_MISMATCH(`${what} failed on input ${shapes}: ${firstLine(err)}`);
  }
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].replace(/^\[ONNXRuntimeError\] : \d+ : \w+ : /, '');
}

export const floatTensor = (data: Float32Array, shape: number[]) => new ort.Tensor('float32', data, shape);

/** How a model is run for a measurement: exactly, and as ONNX Runtime runs it on this CPU. */
export interface ModelRuns {
  /** Exact integer arithmetic: int8 weights beyond ±64 run as uint8 weights (exact on every CPU). */
  exact: Uint8Array;
  /** The model as it is: what plain ONNX Runtime computes on this CPU. */
  asIs: Uint8Array;
  /** ONNX Runtime on this CPU may give other numbers than the exact run. */
  differs: boolean;
  /** What ONNX Runtime does on this CPU, in words. */
  why: string;
}

export function modelRuns(model: ModelProto): ModelRuns {
  const asIs = encodeModel(model);
  // Rewritten whenever it matters on some CPU, so the exact figure is the same on every CPU.
  const form = ortInt8Form(model, asIs, { saturates: true, why: 'exact reference' });
  const cpu = ortCpu();
  const differs = form.rewritten && cpu.saturates;
  const why = differs || !cpu.saturates ? cpu.why : `${cpu.why}; but this model has no int8 weights beyond ±${ORT_SAFE_WEIGHT}, so it is exact here too`;
  return { exact: form.bytes, asIs, differs, why };
}

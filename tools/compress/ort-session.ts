// ONNX Runtime sessions for the toolkit (calibration, evaluation, comparison), with failures
// turned into errors that name the model and say what went wrong.
import * as ort from 'onnxruntime-node';
import { compressError } from './errors.js';

export type Feeds = Record<string, ort.Tensor>;

export async function openSession(bytes: Uint8Array, what: string): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2, interOpNumThreads: 1, logSeverityLevel: 3 });
  } catch (err) {
    throw compressError('EDGE_MODEL_INVALID', `ONNX Runtime cannot load ${what}: ${firstLine(err)}`);
  }
}

export async function runSession(session: ort.InferenceSession, feeds: Feeds, what: string, outputs?: string[]): Promise<ort.InferenceSession.OnnxValueMapType> {
  try {
    return outputs ? await session.run(feeds, outputs) : await session.run(feeds);
  } catch (err) {
    const shapes = Object.entries(feeds).map(([k, v]) => `${k}: (${v.dims.join(', ')})`).join(', ');
    throw compressError('EDGE_CALIB_MISMATCH', `${what} failed on input ${shapes}: ${firstLine(err)}`);
  }
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].replace(/^\[ONNXRuntimeError\] : \d+ : \w+ : /, '');
}

export const floatTensor = (data: Float32Array, shape: number[]) => new ort.Tensor('float32', data, shape);

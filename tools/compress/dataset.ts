// Folders of NumPy .npy files as model inputs: one sample or a batch per file, float32 (other
// numeric dtypes are converted), checked against the model's input before anything runs.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NpyFormatError, readNpy, toFloat32 } from '../../agent/tensor/npy.js';
import { DataType, valueInfoShape, valueInfoType, type ModelProto } from '../../agent/onnx/model.js';
import { ToolErrors, type EdgeError } from './errors.js';
import { realInputs } from './graph.js';

export interface InputSpec {
  name: string;
  /** Numbers are fixed, strings symbolic (batch, dynamic height...). */
  shape: (number | string)[];
}

export interface Batch {
  file: string;
  /** Full shape including the batch dimension. */
  shape: number[];
  data: Float32Array;
}

/** The single float input a calibration or evaluation set feeds. */
export function singleInput(model: ModelProto, what: string): InputSpec {
  const inputs = realInputs(model.graph!);
  if (inputs.length !== 1) {
    throw ToolErrors.MODEL_UNSUPPORTED(`${what} has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); data folders feed models with exactly one input`);
  }
  const inp = inputs[0];
  if (valueInfoType(inp) !== DataType.FLOAT) {
    throw ToolErrors.MODEL_UNSUPPORTED(`${what}: input ${inp.name} is not float32; data folders feed float32 inputs`);
  }
  return { name: inp.name!, shape: valueInfoShape(inp) };
}

export const shapeText = (s: (number | string)[]) => `(${s.map((d) => (typeof d === 'string' ? d || '?' : d)).join(', ')})`;

/** The .npy files of a folder in name order; an empty or missing folder is an error. */
export function listNpyFiles(dir: string, role: 'calibration' | 'data', empty: (what: string) => EdgeError = ToolErrors.CALIB_EMPTY): string[] {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw ToolErrors.DATA_INVALID(`${role} folder ${dir} is a file; expected a folder of .npy files`);
    names = readdirSync(dir);
  } catch (err) {
    if ((err as { code?: string }).code === ToolErrors.DATA_INVALID.code) throw err;
    throw ToolErrors.DATA_INVALID(`cannot read ${role} folder ${dir}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (err as Error).message}`);
  }
  const files = names.filter((n) => n.endsWith('.npy')).sort().map((n) => join(dir, n));
  if (files.length === 0) {
    throw empty(`${role} folder ${dir} holds no .npy files; expected one or more float32 .npy arrays shaped like the model input (one sample or a batch each)`);
  }
  return files;
}

/** Reads one file and shapes it as a batch for `input`; any mismatch is a clear error. */
export function loadBatch(file: string, input: InputSpec): Batch {
  let arr;
  try {
    arr = readNpy(file);
  } catch (err) {
    if (err instanceof NpyFormatError) throw ToolErrors.DATA_INVALID(err.message);
    throw err;
  }
  const want = input.shape;
  let shape = arr.shape;
  if (want.length > 0 && shape.length === want.length - 1) shape = [1, ...shape];
  const mismatch = shape.length !== want.length || want.some((d, i) => typeof d === 'number' && d > 0 && d !== shape[i]);
  if (mismatch || shape.some((d) => d === 0)) {
    throw ToolErrors.CALIB_MISMATCH(`${file} has shape ${shapeText(arr.shape)}, but model input "${input.name}" expects ${shapeText(want)} (one sample without the batch dimension, or a batch)`);
  }
  return { file, shape, data: toFloat32(arr) };
}

/** Splits a batch into chunks of at most `max` samples (calibration exposes many tensors at once). */
export function* chunks(b: Batch, max: number): Generator<Batch> {
  const n = b.shape[0];
  const per = b.data.length / Math.max(n, 1);
  for (let s = 0; s < n; s += max) {
    const e = Math.min(n, s + max);
    yield { file: b.file, shape: [e - s, ...b.shape.slice(1)], data: b.data.subarray(s * per, e * per) };
  }
}

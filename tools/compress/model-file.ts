// Reading a model file with errors a user understands, and writing one back.
import { readFileSync, writeFileSync } from 'node:fs';
import { decodeModel, encodeModel, OnnxFormatError, type ModelProto } from '../../agent/onnx/model.js';
import { ToolErrors } from './errors.js';

export function readModelFile(file: string): ModelProto {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw ToolErrors.MODEL_UNREADABLE(`cannot read model ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder, expected a .onnx file' : (err as Error).message}`);
  }
  try {
    return decodeModel(bytes, file);
  } catch (err) {
    if (err instanceof OnnxFormatError) throw ToolErrors.MODEL_INVALID(`${err.message} (expected an ONNX ModelProto, the .onnx file an exporter writes)`);
    throw err;
  }
}

export function writeModelFile(file: string, model: ModelProto): number {
  const bytes = encodeModel(model);
  try {
    writeFileSync(file, bytes);
  } catch (err) {
    throw ToolErrors.MODEL_UNREADABLE(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return bytes.length;
}

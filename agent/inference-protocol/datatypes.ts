// The Open Inference Protocol's tensor data types and the element types models declare.
import type { DType, IOSpec } from '../runtime/backend.js';

export const PROTOCOL_DATATYPE: Record<DType, string> = {
  float32: 'FP32',
  uint8: 'UINT8',
  int8: 'INT8',
  int32: 'INT32',
  int64: 'INT64',
};

/** Every data type of the protocol (those no model here declares are refused by name). */
export const PROTOCOL_DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;

/** A declared shape in the protocol's form: a symbolic (batch) dimension is -1. */
export const protocolShape = (shape: IOSpec['shape']): number[] => shape.map((d) => (typeof d === 'number' ? d : -1));

/** A tensor's metadata in the protocol's form. */
export const tensorMetadata = (s: IOSpec): { name: string; datatype: string; shape: number[] } =>
  ({ name: s.name, datatype: PROTOCOL_DATATYPE[s.dtype], shape: protocolShape(s.shape) });

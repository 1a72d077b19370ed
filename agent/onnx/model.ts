// Reading and writing ONNX protobufs (onnx-proto's generated protobufjs code) and building
// small graphs. Shared by the native engine's loader, the compression toolkit and tests.
import { createRequire } from 'node:module';
import type { onnx as OnnxNs } from 'onnx-proto';
import { Errors } from '../errors.js';

const require = createRequire(import.meta.url);
export const onnx: typeof OnnxNs = (require('onnx-proto') as { onnx: typeof OnnxNs }).onnx;
export type ModelProto = OnnxNs.ModelProto;
export type GraphProto = OnnxNs.IGraphProto;
export type NodeProto = OnnxNs.INodeProto;
export type TensorProto = OnnxNs.ITensorProto;
export type ValueInfoProto = OnnxNs.IValueInfoProto;
export type AttributeProto = OnnxNs.IAttributeProto;

/** ONNX TensorProto.DataType values. */
export const DataType = {
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13,
} as const;
export type DataTypeName = keyof typeof DataType;
export const dataTypeName = (t: number): string =>
  (Object.entries(DataType).find(([, v]) => v === t)?.[0] ?? `type${t}`).toLowerCase();

export type TypedArray = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array | Float64Array | Uint16Array | Int16Array;

export class OnnxFormatError extends Error {
  readonly code = Errors.ONNX_INVALID.code;
}

/** Parses a .onnx file's bytes; anything that is not an ONNX model is an OnnxFormatError. */
export function decodeModel(bytes: Uint8Array, what = 'model'): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new OnnxFormatError(`${what} is not an ONNX model: ${(err as Error).message}`);
  }
  if (!model.graph || !model.graph.node || model.graph.node.length === 0) {
    throw new OnnxFormatError(`${what} is not an ONNX model: it has no graph nodes`);
  }
  return model;
}

export function encodeModel(model: OnnxNs.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

const toNumber = (v: number | { toNumber(): number } | null | undefined): number =>
  v == null ? 0 : typeof v === 'number' ? v : v.toNumber();

export function dims(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => toNumber(d as number));
}

/** The values of an initializer as a typed array (copying out of raw_data). */
export function tensorData(t: TensorProto): TypedArray {
  const n = dims(t).reduce((a, b) => a * b, 1);
  const raw = t.rawData && t.rawData.length ? t.rawData : undefined;
  const fromRaw = <A extends TypedArray>(C: { new (b: ArrayBuffer): A; BYTES_PER_ELEMENT: number }): A => {
    const copy = new Uint8Array(raw!.length);
    copy.set(raw!);
    return new C(copy.buffer);
  };
  switch (t.dataType) {
    case DataType.FLOAT:
      return raw ? fromRaw(Float32Array) : Float32Array.from(t.floatData ?? []);
    case DataType.DOUBLE:
      return raw ? fromRaw(Float64Array) : Float64Array.from(t.doubleData ?? []);
    case DataType.UINT8:
      return raw ? fromRaw(Uint8Array) : Uint8Array.from(t.int32Data ?? []);
    case DataType.INT8:
      return raw ? fromRaw(Int8Array) : Int8Array.from(t.int32Data ?? []);
    case DataType.INT16:
      return raw ? fromRaw(Int16Array) : Int16Array.from(t.int32Data ?? []);
    case DataType.UINT16:
      return raw ? fromRaw(Uint16Array) : Uint16Array.from(t.int32Data ?? []);
    case DataType.INT32:
      return raw ? fromRaw(Int32Array) : Int32Array.from(t.int32Data ?? []);
    case DataType.INT64:
      return raw ? fromRaw(BigInt64Array) : BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(toNumber(v as number))));
    default:
      throw new OnnxFormatError(`initializer ${t.name}: unsupported data type ${dataTypeName(t.dataType ?? 0)} (${n} elements)`);
  }
}

function dtypeOf(data: TypedArray): number {
  if (data instanceof Float32Array) return DataType.FLOAT;
  if (data instanceof Uint8Array) return DataType.UINT8;
  if (data instanceof Int8Array) return DataType.INT8;
  if (data instanceof Int32Array) return DataType.INT32;
  if (data instanceof BigInt64Array) return DataType.INT64;
  if (data instanceof Float64Array) return DataType.DOUBLE;
  if (data instanceof Int16Array) return DataType.INT16;
  return DataType.UINT16;
}

/** An initializer tensor; the element type follows the typed array. */
export function makeTensor(name: string, shape: number[], data: TypedArray): TensorProto {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new Error(`tensor ${name}: shape [${shape}] holds ${n} values, got ${data.length}`);
  return {
    name,
    dims: shape,
    dataType: dtypeOf(data),
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

type AttrValue = number | number[] | string | TensorProto | { float: number } | { floats: number[] };

function makeAttribute(name: string, v: AttrValue): AttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    return Number.isInteger(v) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
  }
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if ('float' in v) return { name, type: A.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: A.FLOATS, floats: v.floats };
  return { name, type: A.TENSOR, t: v };
}

export function makeNode(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, name?: string, domain?: string): NodeProto {
  return {
    opType,
    input: inputs,
    output: outputs,
    name: name ?? `${opType}_${outputs[0]}`,
    domain: domain ?? '',
    attribute: Object.entries(attrs).map(([k, v]) => makeAttribute(k, v)),
  };
}

/** A graph input or output; a string dimension is symbolic (for example the batch). */
export function makeValueInfo(name: string, elemType: number, shape: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

export function makeModel(graph: GraphProto, opset = 13, producer = 'edge-agent'): OnnxNs.IModelProto {
  return {
    irVersion: 7,
    producerName: producer,
    opsetImport: [{ domain: '', version: opset }],
    graph,
  };
}

/** Reads a node attribute by name (ints/floats/strings as JS values). */
export function attr(node: NodeProto, name: string): number | number[] | string | TensorProto | undefined {
  const a = node.attribute?.find((x) => x.name === name);
  if (!a) return undefined;
  const A = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case A.INT: return toNumber(a.i as number);
    case A.FLOAT: return a.f ?? 0;
    case A.INTS: return (a.ints ?? []).map((v) => toNumber(v as number));
    case A.FLOATS: return a.floats ?? [];
    case A.STRING: return new TextDecoder().decode(a.s ?? new Uint8Array());
    case A.TENSOR: return a.t ?? undefined;
    default: return undefined;
  }
}

/** Shape of a value info: numbers for fixed dims, strings for symbolic ones. */
export function valueInfoShape(v: ValueInfoProto): (number | string)[] {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : toNumber(d.dimValue as number)));
}
export function valueInfoType(v: ValueInfoProto): number {
  return v.type?.tensorType?.elemType ?? 0;
}

// A segment as an ONNX model of its own: its nodes, the initializers they read, and its
// boundary tensors as graph inputs and outputs with the element types and shapes one probe run
// of the whole model measured.
import * as ort from 'onnxruntime-node';
import {
  attr, encodeModel, makeValueInfo, onnx, valueInfoShape, valueInfoType, DataType,
  type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto,
} from '../../onnx/model.js';
import type { Segment } from './segments.js';

export interface TensorFacts { elemType: number; shape: number[] }

const ORT_TYPE: Record<string, number> = {
  float32: DataType.FLOAT, uint8: DataType.UINT8, int8: DataType.INT8, uint16: DataType.UINT16, int16: DataType.INT16,
  int32: DataType.INT32, int64: DataType.INT64, string: DataType.STRING, bool: DataType.BOOL, float16: DataType.FLOAT16,
  float64: DataType.DOUBLE, uint32: DataType.UINT32, uint64: DataType.UINT64,
};

/** The model with every Constant node turned into an initializer (the engine reads constants only from initializers). */
export function withConstantsAsInitializers(model: ModelProto): ModelProto {
  const copy = onnx.ModelProto.decode(encodeModel(model));
  const g = copy.graph!;
  const kept: NodeProto[] = [];
  for (const n of g.node ?? []) {
    const value = n.opType === 'Constant' && (n.domain ?? '') === '' ? attr(n, 'value') : undefined;
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      g.initializer = [...(g.initializer ?? []), onnx.TensorProto.create({ ...(value as TensorProto), name: n.output![0] })];
    } else kept.push(n);
  }
  g.node = kept;
  return copy;
}

/** The graph inputs that are not initializers (old exporters list initializers as inputs too). */
export function realInputs(model: ModelProto): ValueInfoProto[] {
  const inits = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  return (model.graph?.input ?? []).filter((i) => !inits.has(i.name));
}

/**
 * The element type and shape of every tensor the graph computes, from one ONNX Runtime run on
 * zeros at the given input shapes (each node output exposed as a graph output).
 */
export async function probeTensors(model: ModelProto, inputShapes: Record<string, number[]>): Promise<Map<string, TensorFacts>> {
  const probe = onnx.ModelProto.decode(encodeModel(model));
  const g = probe.graph!;
  const outs = new Set((g.output ?? []).map((o) => o.name));
  for (const n of g.node ?? []) for (const o of n.output ?? []) if (o && !outs.has(o)) { g.output!.push(onnx.ValueInfoProto.create({ name: o })); outs.add(o); }
  const feeds: Record<string, ort.Tensor> = {};
  const facts = new Map<string, TensorFacts>();
  for (const vi of realInputs(model)) {
    const shape = inputShapes[vi.name!];
    const elemType = valueInfoType(vi);
    const n = shape.reduce((a, b) => a * b, 1);
    const type = Object.entries(ORT_TYPE).find(([, v]) => v === elemType)?.[0] as keyof typeof ZEROS | undefined;
    if (!type || !(type in ZEROS)) throw new Error(`input ${vi.name}: element type ${elemType} is not one the partitioner can feed (float32, uint8, int8, int32, int64)`);
    feeds[vi.name!] = new ort.Tensor(type, ZEROS[type](n), shape);
    facts.set(vi.name!, { elemType, shape });
  }
  const session = await ort.InferenceSession.create(encodeModel(probe), { logSeverityLevel: 3, graphOptimizationLevel: 'disabled' });
  try {
    const result = await session.run(feeds);
    for (const [name, t] of Object.entries(result)) facts.set(name, { elemType: ORT_TYPE[t.type] ?? 0, shape: [...t.dims] });
  } finally {
    await session.release();
  }
  return facts;
}

const ZEROS = {
  float32: (n: number) => new Float32Array(n), uint8: (n: number) => new Uint8Array(n), int8: (n: number) => new Int8Array(n),
  int32: (n: number) => new Int32Array(n), int64: (n: number) => new BigInt64Array(n),
};

/** One segment as a model: same opsets, only the initializers its nodes read. */
export function segmentModel(model: ModelProto, seg: Segment, facts: Map<string, TensorFacts>, name: string): ModelProto {
  const g = model.graph!;
  const nodes = seg.nodes.map((i) => g.node![i]);
  const read = new Set(nodes.flatMap((n) => n.input ?? []));
  const info = (t: string) => {
    const f = facts.get(t);
    if (!f) throw new Error(`the probe run did not measure tensor ${t}`);
    return makeValueInfo(t, f.elemType, f.shape);
  };
  return onnx.ModelProto.create({
    irVersion: model.irVersion,
    opsetImport: model.opsetImport,
    producerName: 'edge-agent partitioner',
    graph: {
      name,
      node: nodes,
      initializer: (g.initializer ?? []).filter((t) => read.has(t.name!)),
      input: seg.inputs.map(info),
      output: seg.outputs.map(info),
    },
  });
}

/** A graph input's shape with the batch (a symbolic first dimension) at 1; other symbolic dimensions are refused. */
export function fixedInputShapes(model: ModelProto, given: Record<string, number[]> = {}): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const vi of realInputs(model)) {
    if (given[vi.name!]) { out[vi.name!] = given[vi.name!]; continue; }
    out[vi.name!] = valueInfoShape(vi).map((d, i) => {
      if (typeof d === 'number' && d > 0) return d;
      if (i === 0) return 1;
      throw new Error(`input ${vi.name} has a symbolic dimension ${i} (${d || '?'}): the partitioned backend plans fixed sizes; give the input a fixed shape (only the batch may stay symbolic)`);
    });
  }
  return out;
}

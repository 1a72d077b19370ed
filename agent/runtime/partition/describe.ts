// The partition of a model in words and numbers, without opening any backend: for
// `edge-model inspect` (which nodes go native, which go to ONNX Runtime, and why).
import { Errors } from '../../errors.js';
import type { ModelProto } from '../../onnx/model.js';
import { createEngine } from '../native/engine-addon.js';
import { partitionModel } from './partitioner.js';
import { fixedInputShapes, probeTensors, withConstantsAsInitializers } from './submodel.js';
import type { Side } from './segments.js';

export interface PartitionReport {
  nativeNodes: number;
  ortNodes: number;
  segments: { side: Side; nodes: number; operators: Record<string, number>; inputs: string[]; outputs: string[] }[];
  /** Operators the engine lacks. */
  unsupported: string[];
  /** Uses of supported operators the compiler or engine refused. */
  refused: string[];
  /** Every node off the engine with the reason. */
  ortNodeReasons: { name: string; op: string; why: string }[];
}

/** Cuts the model as the partitioned backend would (the engine checks each native plan when its addon is built). */
export async function describePartition(model: ModelProto, inputShapes?: Record<string, number[]>): Promise<PartitionReport> {
  const proto = withConstantsAsInitializers(model);
  const facts = await probeTensors(proto, fixedInputShapes(proto, inputShapes));
  let engine = true;
  const p = partitionModel(proto, facts, 'model', (c) => {
    if (!engine) return;
    try {
      createEngine(c.plan, c.weights, { threads: 1 }).dispose();
    } catch (err) {
      // Without the addon the compiler's verdict stands; a plan the engine refuses moves.
      if ((err as { code?: string }).code === Errors.NATIVE_PLAN_INVALID.code) throw err;
      engine = false;
    }
  });
  const nodes = proto.graph!.node!;
  const nativeNodes = p.nodes.filter((n) => n.side === 'native').length;
  return {
    nativeNodes,
    ortNodes: p.nodes.length - nativeNodes,
    segments: p.segments.map((s) => {
      const operators: Record<string, number> = {};
      for (const i of s.nodes) operators[nodes[i].opType!] = (operators[nodes[i].opType!] ?? 0) + 1;
      return { side: s.side, nodes: s.nodes.length, operators, inputs: s.inputs, outputs: s.outputs };
    }),
    unsupported: p.unsupported,
    refused: p.refused,
    ortNodeReasons: p.nodes.filter((n) => n.side === 'ort' && n.why).map((n) => ({ name: n.name, op: n.op, why: n.why! })),
  };
}

// Deciding the partition: which nodes run on the native engine and which on ONNX Runtime.
// A node goes to ONNX Runtime when the engine lacks its operator (support.ts), or when the
// compiler refuses the segment it lands in because of that node's use (attributes, per-axis
// activations, a float result with two readers...): then that node moves and the graph is cut
// again, until every native segment compiles.
import type { ModelProto, NodeProto } from '../../onnx/model.js';
import { EdgeError } from '../../errors.js';
import type { PlanDType } from '../native/plan.js';
import { isSupportedOp, opLabel } from '../native/support.js';
import { Compiler } from '../native/compile/compiler.js';
import { UnsupportedUse, type CompiledModel } from '../native/compile/values.js';
import { cutSegments, type Segment, type Side } from './segments.js';
import { segmentModel, type TensorFacts } from './submodel.js';

export interface PlannedSegment extends Segment {
  model: ModelProto;
  /** For a native segment: the compiled plan (reused by the backend). */
  compiled?: CompiledModel;
}

export interface NodePlacement {
  name: string;
  op: string;
  side: Side;
  /** Why an ONNX Runtime node is not native: the operator is missing, or what the compiler refused. */
  why?: string;
}

export interface Partition {
  segments: PlannedSegment[];
  nodes: NodePlacement[];
  /** Operators the engine lacks, each once (sorted). */
  unsupported: string[];
  /** Uses of supported operators the compiler refused, as it worded them. */
  refused: string[];
}

/**
 * The compiler, refusing at the node that makes it what the engine would refuse for the whole
 * plan (engine.cc: tensors of rank 1 to 6 with every dimension at least 1), so that only that
 * node moves. A scalar (rank 0, a constant operand such as the 0.5 of x * 0.5) is stored as
 * one element of rank 1: the same bytes, and a shape the engine takes.
 */
class SegmentCompiler extends Compiler {
  override tensor(dtype: PlanDType, shape: number[], viewOf?: number): number {
    if (shape.length === 0) shape = [1];
    if (shape.length > 6) throw this.bad(`the engine takes tensors of rank 1 to 6, this one is [${shape.join(', ')}]`);
    if (shape.some((d) => !(d >= 1))) throw this.bad(`the engine takes no empty tensors, this one is [${shape.join(', ')}]`);
    return super.tensor(dtype, shape, viewOf);
  }
}

/**
 * Cuts the model (Constant nodes already initializers, `facts` from probeTensors). `verify`
 * gives the engine itself a compiled segment (it checks every plan again); a segment it
 * refuses goes to ONNX Runtime whole.
 */
export function partitionModel(model: ModelProto, facts: Map<string, TensorFacts>, what = 'model', verify?: (c: CompiledModel) => void): Partition {
  const g = model.graph!;
  const nodes = g.node ?? [];
  const index = new Map<NodeProto, number>(nodes.map((n, i) => [n, i]));
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && producer.set(o, i)));
  const why = new Map<number, string>();
  nodes.forEach((n, i) => {
    if (!isSupportedOp(n.opType ?? '', n.domain ?? '')) why.set(i, `the engine has no ${opLabel(n.opType ?? '?', n.domain ?? '')}`);
  });
  const shape = { nodes, initializers: new Set((g.initializer ?? []).map((t) => t.name!)), outputs: (g.output ?? []).map((o) => o.name!) };
  const compiled = new Map<string, CompiledModel>();

  for (let round = 0; round <= nodes.length; round++) {
    const segments = cutSegments(shape, (i) => why.has(i));
    const planned: PlannedSegment[] = [];
    let moved = false;
    for (const [k, seg] of segments.entries()) {
      const m = segmentModel(model, seg, facts, `${what} segment ${k} (${seg.side})`);
      if (seg.side === 'ort') { planned.push({ ...seg, model: m }); continue; }
      const key = seg.nodes.join(',');
      let c = compiled.get(key);
      if (!c) {
        const compiler = new SegmentCompiler(m);
        try {
          c = compiler.run();
          verify?.(c);
        } catch (err) {
          if (!(err instanceof UnsupportedUse) && !(verify && err instanceof EdgeError)) throw err;
          let blamed = err instanceof UnsupportedUse ? culprits(err.label.startsWith('input ') ? err.label.slice(6) : compiler.node, seg, nodes, index, producer).filter((i) => !why.has(i)) : [];
          // Blaming a node already on ONNX Runtime would change nothing: the whole segment goes.
          if (!blamed.length) blamed = seg.nodes.filter((i) => !why.has(i));
          for (const i of blamed) why.set(i, `the engine refused it: ${err.message}`);
          // The other native segments are still tried in this round: one cut per round of
          // refusals, not one per refusal.
          moved = true;
          continue;
        }
        compiled.set(key, c);
      }
      planned.push({ ...seg, model: m, compiled: c });
    }
    if (moved) continue;
    const placement: NodePlacement[] = [];
    const sideOf = new Map<number, Side>();
    for (const seg of planned) for (const i of seg.nodes) if (!sideOf.has(i) || seg.side === 'native') sideOf.set(i, seg.side);
    nodes.forEach((n, i) => placement.push({
      name: n.name || n.output?.[0] || `#${i}`, op: opLabel(n.opType ?? '?', n.domain ?? ''), side: sideOf.get(i) ?? 'ort',
      ...(sideOf.get(i) === 'ort' && why.has(i) ? { why: why.get(i) } : {}),
    }));
    const unsupported = [...new Set(nodes.filter((n) => !isSupportedOp(n.opType ?? '', n.domain ?? '')).map((n) => opLabel(n.opType ?? '?', n.domain ?? '')))].sort();
    const refused = [...new Set([...why.values()].filter((w) => w.startsWith('the engine refused it: ')).map((w) => w.slice('the engine refused it: '.length)))];
    return { segments: planned, nodes: placement, unsupported, refused };
  }
  throw new Error(`${what}: the partition did not settle`);
}

/**
 * The nodes to move to ONNX Runtime when the compiler stopped at `at` in a native segment. A
 * QuantizeLinear moves with the node that feeds it, a graph output with the node that makes
 * it; a DequantizeLinear that travels with its readers moves them, and so does a segment input
 * the engine cannot take; anything else moves the whole segment.
 */
function culprits(at: NodeProto | string | undefined, seg: Segment, nodes: readonly NodeProto[], index: Map<NodeProto, number>, producer: Map<string, number>): number[] {
  const inSeg = new Set(seg.nodes);
  const all = seg.nodes.filter((i) => nodes[i].opType !== 'DequantizeLinear' || !isAttached(i, seg, nodes));
  if (typeof at === 'string') {
    // A segment input the engine cannot take (an int64 shape from ONNX Runtime): its readers move.
    const readers = seg.nodes.filter((j) => (nodes[j].input ?? []).includes(at)).flatMap((j) => upstream(j, nodes, producer, inSeg));
    return readers.length ? readers : all;
  }
  if (!at) return all;
  let i = index.get(at);
  if (i === undefined) {
    // The compiler's pseudo-node for a graph output: the node that makes that tensor.
    const p = producer.get(at.name ?? '');
    return p !== undefined && inSeg.has(p) ? upstream(p, nodes, producer, inSeg) : all;
  }
  if (nodes[i].opType === 'DequantizeLinear' && isAttached(i, seg, nodes)) {
    const out = nodes[i].output?.[0];
    const readers = seg.nodes.filter((j) => (nodes[j].input ?? []).includes(out!));
    return readers.length ? readers.flatMap((j) => upstream(j, nodes, producer, inSeg)) : all;
  }
  i = upstream(i, nodes, producer, inSeg)[0];
  return [i];
}

/** A QuantizeLinear stands for the node that feeds it (they always share a side). */
function upstream(i: number, nodes: readonly NodeProto[], producer: Map<string, number>, inSeg: Set<number>): number[] {
  if (nodes[i].opType === 'QuantizeLinear') {
    const p = producer.get(nodes[i].input?.[0] ?? '');
    if (p !== undefined && inSeg.has(p) && nodes[p].opType !== 'DequantizeLinear') return [p];
  }
  return [i];
}

/** Whether node i is a DequantizeLinear that only feeds nodes of this segment (copied in, not cut on). */
function isAttached(i: number, seg: Segment, nodes: readonly NodeProto[]): boolean {
  return nodes[i].opType === 'DequantizeLinear' && !seg.outputs.some((o) => (nodes[i].output ?? []).includes(o));
}

// Graph surgery shared by the quantizer, pruner and inspector: a name index over a graph,
// turning Constant nodes into initializers, and lifting old opsets to 13 (the first opset with
// per-channel QuantizeLinear/DequantizeLinear).
import {
  attr, DataType, dims, makeNode, makeTensor, valueInfoShape, type GraphProto, type ModelProto, type NodeProto, type TensorProto,
} from '../../agent/onnx/model.js';
import { liftNode } from './opset-lift.js';

export const TARGET_OPSET = 13;

export class GraphIndex {
  readonly graph: GraphProto;
  readonly inits = new Map<string, TensorProto>();
  private used = new Set<string>();

  constructor(graph: GraphProto) {
    this.graph = graph;
    graph.node ??= [];
    graph.initializer ??= [];
    for (const t of graph.initializer) this.inits.set(t.name!, t);
    for (const n of graph.node) for (const o of [...(n.input ?? []), ...(n.output ?? [])]) this.used.add(o);
    for (const v of [...(graph.input ?? []), ...(graph.output ?? [])]) this.used.add(v.name!);
    for (const t of graph.initializer) this.used.add(t.name!);
  }

  /** A tensor name not used anywhere in the graph yet. */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  addInit(t: TensorProto): string {
    this.graph.initializer!.push(t);
    this.inits.set(t.name!, t);
    this.used.add(t.name!);
    return t.name!;
  }

  removeInit(name: string): void {
    this.inits.delete(name);
    this.graph.initializer = this.graph.initializer!.filter((t) => t.name !== name);
  }

  consumers(name: string): NodeProto[] {
    return this.graph.node!.filter((n) => (n.input ?? []).includes(name));
  }

  producer(name: string): NodeProto | undefined {
    return this.graph.node!.find((n) => (n.output ?? []).includes(name));
  }

  isGraphOutput(name: string): boolean {
    return (this.graph.output ?? []).some((o) => o.name === name);
  }

  /** Drops initializers no node reads any more (folded BatchNorm parameters, replaced weights). */
  pruneUnusedInits(): void {
    const read = new Set<string>();
    for (const n of this.graph.node!) for (const i of n.input ?? []) read.add(i);
    for (const o of this.graph.output ?? []) read.add(o.name!);
    this.graph.initializer = this.graph.initializer!.filter((t) => read.has(t.name!));
    this.inits.clear();
    for (const t of this.graph.initializer) this.inits.set(t.name!, t);
  }
}

/** The graph's real inputs: old exporters also list every initializer as an input. */
export function realInputs(graph: GraphProto) {
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  return (graph.input ?? []).filter((i) => !inits.has(i.name));
}

export function opsetOf(model: ModelProto): number {
  const imp = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const v = imp?.version;
  return v == null ? 1 : typeof v === 'number' ? v : (v as { toNumber(): number }).toNumber();
}

/** Moves every Constant node's value into an initializer (quantizers look weights up there). */
export function constantsToInitializers(g: GraphIndex): void {
  const keep: NodeProto[] = [];
  for (const n of g.graph.node!) {
    if (n.opType !== 'Constant' || (n.domain && n.domain !== 'ai.onnx')) {
      keep.push(n);
      continue;
    }
    const out = n.output![0];
    const value = attr(n, 'value');
    let t: TensorProto | undefined;
    if (value && typeof value === 'object' && !Array.isArray(value)) t = { ...(value as TensorProto), name: out };
    else {
      const a = n.attribute?.[0];
      if (a?.name === 'value_float') t = makeTensor(out, [], new Float32Array([a.f ?? 0]));
      else if (a?.name === 'value_floats') t = makeTensor(out, [a.floats!.length], Float32Array.from(a.floats!));
      else if (a?.name === 'value_int') t = makeTensor(out, [], new BigInt64Array([BigInt(Number(a.i ?? 0))]));
      else if (a?.name === 'value_ints') t = makeTensor(out, [a.ints!.length], BigInt64Array.from(a.ints!.map((v) => BigInt(Number(v)))));
    }
    if (!t) {
      keep.push(n); // sparse or string constants: left as nodes
      continue;
    }
    g.addInit(t);
  }
  g.graph.node = keep;
}

const i64 = (values: number[]) => BigInt64Array.from(values.map((v) => BigInt(v)));

/**
 * Rewrites the operators whose signature changed between the model's opset and 13 (attributes
 * that became inputs, Softmax's axis meaning). Refuses the few it cannot translate.
 */
export function upgradeToOpset13(model: ModelProto, g: GraphIndex): void {
  const from = opsetOf(model);
  if (from >= TARGET_OPSET) return;
  const out: NodeProto[] = [];
  const dropAttrs = (n: NodeProto, names: string[]) => {
    n.attribute = (n.attribute ?? []).filter((a) => !names.includes(a.name!));
  };
  const constInput = (base: string, t: (name: string) => TensorProto): string => {
    const name = g.fresh(base);
    g.addInit(t(name));
    return name;
  };
  for (const n of g.graph.node!) {
    const op = n.opType!;
    if (n.domain && n.domain !== 'ai.onnx') {
      out.push(n);
      continue;
    }
    if (op === 'Clip' && from < 11) {
      const min = attr(n, 'min') as number | undefined;
      const max = attr(n, 'max') as number | undefined;
      dropAttrs(n, ['min', 'max']);
      const inputs = [n.input![0]];
      inputs.push(min === undefined ? '' : constInput(`${n.output![0]}_min`, (nm) => makeTensor(nm, [], new Float32Array([min]))));
      if (max !== undefined) inputs.push(constInput(`${n.output![0]}_max`, (nm) => makeTensor(nm, [], new Float32Array([max]))));
      n.input = inputs;
    } else if (op === 'Slice' && from < 10) {
      const starts = attr(n, 'starts') as number[];
      const ends = attr(n, 'ends') as number[];
      const axes = attr(n, 'axes') as number[] | undefined;
      dropAttrs(n, ['starts', 'ends', 'axes']);
      const o = n.output![0];
      n.input = [
        n.input![0],
        constInput(`${o}_starts`, (nm) => makeTensor(nm, [starts.length], i64(starts))),
        constInput(`${o}_ends`, (nm) => makeTensor(nm, [ends.length], i64(ends))),
        ...(axes ? [constInput(`${o}_axes`, (nm) => makeTensor(nm, [axes.length], i64(axes)))] : []),
      ];
    } else if ((op === 'Squeeze' || op === 'Unsqueeze' || op === 'ReduceSum') && attr(n, 'axes') !== undefined) {
      const axes = attr(n, 'axes') as number[];
      dropAttrs(n, ['axes']);
      n.input = [n.input![0], constInput(`${n.output![0]}_axes`, (nm) => makeTensor(nm, [axes.length], i64(axes)))];
    } else if (op === 'Split' && attr(n, 'split') !== undefined) {
      const split = attr(n, 'split') as number[];
      dropAttrs(n, ['split']);
      n.input = [n.input![0], constInput(`${n.output![0]}_split`, (nm) => makeTensor(nm, [split.length], i64(split)))];
    } else if (op === 'Pad' && from < 11) {
      const pads = attr(n, 'pads') as number[];
      const value = (attr(n, 'value') as number | undefined) ?? 0;
      dropAttrs(n, ['pads', 'value']);
      n.input = [
        n.input![0],
        constInput(`${n.output![0]}_pads`, (nm) => makeTensor(nm, [pads.length], i64(pads))),
        constInput(`${n.output![0]}_value`, (nm) => makeTensor(nm, [], new Float32Array([value]))),
      ];
    } else if (op === 'Softmax' || op === 'LogSoftmax' || op === 'Hardmax') {
      // Before 13 the op flattened the input to 2-D at `axis`; from 13 it works along one axis.
      // The two agree when axis is the last dimension; otherwise spell the old meaning out.
      const axis = (attr(n, 'axis') as number | undefined) ?? 1;
      const rank = knownRank(g.graph, n.output![0]) ?? knownRank(g.graph, n.input![0]);
      if (rank !== undefined && (axis === rank - 1 || axis === -1)) {
        out.push(n);
        continue;
      }
      const x = n.input![0];
      const y = n.output![0];
      const shape = g.fresh(`${y}_shape`);
      const flat = g.fresh(`${y}_flat`);
      const soft = g.fresh(`${y}_2d`);
      out.push(makeNode('Shape', [x], [shape]));
      out.push(makeNode('Flatten', [x], [flat], { axis }));
      out.push(makeNode(op, [flat], [soft], { axis: 1 }, n.name ?? undefined));
      out.push(makeNode('Reshape', [soft, shape], [y]));
      continue;
    } else {
      const lifted = liftNode(g, n, from);
      if (lifted) {
        out.push(lifted);
        continue;
      }
    }
    out.push(n);
  }
  g.graph.node = out;
  // The empty roi/scales tensors lifted Resize nodes no longer read.
  const read = new Set(out.flatMap((n) => n.input ?? []));
  for (const v of [...(g.graph.input ?? []), ...(g.graph.output ?? [])]) read.add(v.name!);
  for (const t of [...g.graph.initializer!]) if (!read.has(t.name!) && dims(t).reduce((a, b) => a * b, 1) === 0) g.removeInit(t.name!);
  const imp = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (imp) imp.version = TARGET_OPSET;
  else (model.opsetImport ??= []).push({ domain: '', version: TARGET_OPSET });
  const ir = Number(model.irVersion ?? 0);
  if (ir < 7) model.irVersion = 7;
}

function knownRank(graph: GraphProto, name: string): number | undefined {
  const v = [...(graph.output ?? []), ...(graph.valueInfo ?? []), ...(graph.input ?? [])].find((x) => x.name === name);
  if (!v?.type?.tensorType?.shape) return undefined;
  return valueInfoShape(v).length;
}

/** Loads a model into the canonical form every tool works on: constants as initializers, opset >= 13. */
export function canonicalize(model: ModelProto): GraphIndex {
  const g = new GraphIndex(model.graph!);
  constantsToInitializers(g);
  upgradeToOpset13(model, g);
  return g;
}

export function isFloatInit(t: TensorProto | undefined): boolean {
  return !!t && t.dataType === DataType.FLOAT;
}

export const shapeOf = (t: TensorProto) => dims(t);

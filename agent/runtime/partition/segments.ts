// Cutting a graph into segments: maximal runs of nodes the native engine takes and runs that
// ONNX Runtime takes, in an order that respects every data dependency. A pure function of the
// graph and of which nodes must go to ONNX Runtime, so it can be tested from a table.
//
// The cuts fall on quantized tensors: a QuantizeLinear stays with the node that produces its
// float input, and a DequantizeLinear travels with the nodes that consume it (copied into each
// segment that needs it: it is pure and cheap). So a native segment takes and gives int8/uint8
// tensors, and the scale and zero point stay beside them in the Q/DQ nodes on both sides.
import type { NodeProto } from '../../onnx/model.js';

export type Side = 'native' | 'ort';

export interface Segment {
  side: Side;
  /** Indices into graph.node, in graph order (attached DequantizeLinear copies included). */
  nodes: number[];
  /** Tensors the segment reads that an earlier segment (or the caller) provides. */
  inputs: string[];
  /** Tensors the segment produces that a later segment or the graph's outputs need. */
  outputs: string[];
}

export interface GraphShape {
  nodes: readonly NodeProto[];
  /** Names of the graph's initializers (copied into each segment that reads them). */
  initializers: ReadonlySet<string>;
  outputs: readonly string[];
}

/**
 * Which node each DequantizeLinear follows: a DequantizeLinear whose result only feeds other
 * nodes is attached to them (it is copied into their segments); one that feeds a graph output
 * is a node of its own.
 */
function attachedDequantizes(g: GraphShape): Set<number> {
  const graphOut = new Set(g.outputs);
  const attached = new Set<number>();
  g.nodes.forEach((n, i) => {
    // com.microsoft's (W8A16 models) only of a constant: the engine's segments take and give
    // 8-bit tensors, so a 16-bit activation's DequantizeLinear stays a node of its own.
    const domain = n.domain ?? '';
    const dq = n.opType === 'DequantizeLinear' &&
      (domain === '' || domain === 'ai.onnx' || (domain === 'com.microsoft' && g.initializers.has(n.input?.[0] ?? '')));
    if (dq && !(n.output ?? []).some((o) => graphOut.has(o))) attached.add(i);
  });
  return attached;
}

/**
 * Cuts the graph. `ort(i)` says that node i must run on ONNX Runtime (an operator the engine
 * lacks, or a use its compiler refused); every other node goes native. The graph must be in
 * topological order (ONNX requires it).
 */
export function cutSegments(g: GraphShape, ort: (i: number) => boolean): Segment[] {
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && producer.set(o, i)));
  const attached = attachedDequantizes(g);

  // A core node's side; a QuantizeLinear follows the core node that produces its input.
  const side = new Map<number, Side>();
  g.nodes.forEach((n, i) => {
    if (attached.has(i)) return;
    let s: Side = ort(i) ? 'ort' : 'native';
    if (n.opType === 'QuantizeLinear' && (n.domain ?? '') === '') {
      const p = producer.get(n.input?.[0] ?? '');
      if (p !== undefined && !attached.has(p) && side.has(p)) s = side.get(p)!;
    }
    side.set(i, s);
  });

  // The core nodes each core node waits for (looking through attached DequantizeLinears).
  const deps = new Map<number, Set<number>>();
  const coreProducers = (tensor: string, into: Set<number>, seen = new Set<number>()): void => {
    const p = producer.get(tensor);
    if (p === undefined || seen.has(p)) return;
    seen.add(p);
    if (!attached.has(p)) into.add(p);
    else for (const i of g.nodes[p].input ?? []) if (i) coreProducers(i, into, seen);
  };
  for (const i of side.keys()) {
    const d = new Set<number>();
    for (const t of g.nodes[i].input ?? []) if (t) coreProducers(t, d);
    d.delete(i);
    deps.set(i, d);
  }

  // Kahn's order, staying on one side as long as a node of that side is ready: each run is
  // as long as the dependencies allow.
  const waiting = new Map([...deps].map(([i, d]) => [i, new Set(d)]));
  const users = new Map<number, number[]>();
  for (const [i, d] of deps) for (const p of d) users.set(p, [...(users.get(p) ?? []), i]);
  const ready = [...waiting].filter(([, d]) => d.size === 0).map(([i]) => i);
  const runs: { side: Side; core: number[] }[] = [];
  while (ready.length) {
    ready.sort((a, b) => a - b);
    const current = side.get(ready[0])!;
    const core: number[] = [];
    for (;;) {
      const k = ready.findIndex((i) => side.get(i) === current);
      if (k < 0) break;
      const i = ready.splice(k, 1)[0];
      core.push(i);
      for (const u of users.get(i) ?? []) {
        const w = waiting.get(u)!;
        w.delete(i);
        if (w.size === 0) {
          ready.push(u);
          ready.sort((a, b) => a - b);
        }
      }
    }
    runs.push({ side: current, core });
  }
  if (runs.reduce((a, r) => a + r.core.length, 0) !== side.size) throw new Error('the graph has a cycle or is not in topological order');

  // Each run with the DequantizeLinears its nodes read through.
  const segments = runs.map(({ side: s, core }) => {
    const members = new Set(core);
    const pull = (tensor: string): void => {
      const p = producer.get(tensor);
      if (p === undefined || !attached.has(p) || members.has(p)) return;
      members.add(p);
      for (const i of g.nodes[p].input ?? []) if (i) pull(i);
    };
    for (const i of core) for (const t of g.nodes[i].input ?? []) if (t) pull(t);
    return { side: s, nodes: [...members].sort((a, b) => a - b), inputs: [] as string[], outputs: [] as string[] };
  });

  // Boundaries: what each segment reads from outside and what others read from it.
  const graphOut = new Set(g.outputs);
  const readers = new Map<string, Set<number>>();
  segments.forEach((seg, k) => {
    const made = new Set(seg.nodes.flatMap((i) => g.nodes[i].output ?? []));
    const ins = new Set<string>();
    for (const i of seg.nodes) {
      for (const t of g.nodes[i].input ?? []) {
        if (!t || made.has(t) || g.initializers.has(t)) continue;
        ins.add(t);
        readers.set(t, (readers.get(t) ?? new Set()).add(k));
      }
    }
    seg.inputs = [...ins];
  });
  segments.forEach((seg, k) => {
    const outs = new Set<string>();
    for (const i of seg.nodes) {
      if (attached.has(i)) continue;
      for (const o of g.nodes[i].output ?? []) {
        if (o && (graphOut.has(o) || [...(readers.get(o) ?? [])].some((r) => r !== k))) outs.add(o);
      }
    }
    seg.outputs = [...outs];
  });
  return segments;
}

// Graph rewrites that keep the model's meaning but leave it in a shape both backends run
// well: the hard-swish that exporters spell as x * Clip(x + 3, 0, 6) / 6 becomes HardSwish,
// a division by a constant becomes a multiplication, MatMul + bias Add becomes Gemm, and
// the Shape/Slice/Concat/Reshape dance that flattens [N, C, 1, 1] becomes Flatten. Nodes left
// without readers are dropped.
import { attr, DataType, dims, makeNode, makeTensor, tensorData, type ModelProto, type NodeProto } from '../../agent/onnx/model.js';
import { opsetOf, type GraphIndex } from './graph.js';

export interface SimplifyReport { hardSwish: number; divToMul: number; gemm: number; flatten: number; removed: number }

const scalarOf = (g: GraphIndex, name: string | undefined): number | undefined => {
  const t = name ? g.inits.get(name) : undefined;
  if (!t || t.dataType !== DataType.FLOAT) return undefined;
  const d = tensorData(t);
  return d.length === 1 ? Number(d[0]) : undefined;
};

const onlyUse = (g: GraphIndex, t: string, user: NodeProto) => {
  const users = g.consumers(t);
  return users.length === 1 && users[0] === user && !g.isGraphOutput(t);
};

export function simplify(model: ModelProto, g: GraphIndex): SimplifyReport {
  const report: SimplifyReport = { hardSwish: 0, divToMul: 0, gemm: 0, flatten: 0, removed: 0 };
  const drop = new Set<NodeProto>();
  const nodes = g.graph.node!;
  const producer = (t: string) => nodes.find((n) => !drop.has(n) && (n.output ?? []).includes(t));

  // HardSwish (opset 14): Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6), or Mul(.., 1/6).
  if (opsetOf(model) >= 13) {
    for (const last of nodes) {
      if (drop.has(last)) continue;
      const isDiv = last.opType === 'Div' && scalarOf(g, last.input![1]) === 6;
      const isMul6 = last.opType === 'Mul' && Math.abs((scalarOf(g, last.input![1]) ?? 0) - 1 / 6) < 1e-6;
      if (!isDiv && !isMul6) continue;
      const mul = producer(last.input![0]);
      if (!mul || mul.opType !== 'Mul' || !onlyUse(g, mul.output![0], last)) continue;
      for (const [xi, ci] of [[0, 1], [1, 0]]) {
        const x = mul.input![xi];
        const clip = producer(mul.input![ci]);
        if (!clip || clip.opType !== 'Clip' || !onlyUse(g, clip.output![0], mul)) continue;
        const lo = clip.input![1] ? scalarOf(g, clip.input![1]) : (attr(clip, 'min') as number | undefined);
        const hi = clip.input![2] ? scalarOf(g, clip.input![2]) : (attr(clip, 'max') as number | undefined);
        if (lo !== 0 || hi !== 6) continue;
        const add = producer(clip.input![0]);
        if (!add || add.opType !== 'Add' || !onlyUse(g, add.output![0], clip)) continue;
        const addX = add.input![0] === x ? add.input![1] : add.input![1] === x ? add.input![0] : undefined;
        if (addX === undefined || scalarOf(g, addX) !== 3) continue;
        drop.add(add).add(clip).add(mul);
        Object.assign(last, makeNode('HardSwish', [x], [last.output![0]], {}, last.name ?? undefined));
        report.hardSwish++;
        break;
      }
    }
  }

  // Div by a constant -> Mul by its reciprocal (same result to float rounding; Mul is everywhere).
  for (const n of nodes) {
    if (drop.has(n) || n.opType !== 'Div') continue;
    const t = g.inits.get(n.input![1]);
    if (!t || t.dataType !== DataType.FLOAT) continue;
    const d = tensorData(t) as Float32Array;
    if (d.some((v) => v === 0)) continue;
    const name = g.addInit(makeTensor(g.fresh(`${n.input![1]}_reciprocal`), dims(t), d.map((v) => 1 / v)));
    Object.assign(n, makeNode('Mul', [n.input![0], name], [n.output![0]], {}, n.name ?? undefined));
    report.divToMul++;
  }

  // Reshape(x, Concat(Slice(Shape(x))[0:1], [-1])) (through any Casts) -> Flatten(x, axis 1).
  for (const n of nodes) {
    if (drop.has(n) || n.opType !== 'Reshape' || g.inits.has(n.input![1])) continue;
    const x = n.input![0];
    const concat = producer(n.input![1]);
    if (!concat || concat.opType !== 'Concat' || concat.input!.length !== 2) continue;
    const through = (t: string): NodeProto[] => {
      const chain: NodeProto[] = [];
      let p = producer(t);
      while (p && p.opType === 'Cast') {
        chain.push(p);
        p = producer(p.input![0]);
      }
      return p ? [...chain, p] : chain;
    };
    const batchChain = through(concat.input![0]);
    const slice = batchChain[batchChain.length - 1];
    if (!slice || slice.opType !== 'Slice') continue;
    const starts = g.inits.get(slice.input![1]);
    const ends = g.inits.get(slice.input![2]);
    if (!starts || !ends || Number(tensorData(starts)[0]) !== 0 || Number(tensorData(ends)[0]) !== 1) continue;
    const shapeChain = through(slice.input![0]);
    const shape = shapeChain[shapeChain.length - 1];
    if (!shape || shape.opType !== 'Shape' || shape.input![0] !== x) continue;
    const restChain = through(concat.input![1]);
    const restName = restChain.length ? restChain[restChain.length - 1].input![0] : concat.input![1];
    const rest = g.inits.get(restName);
    if (!rest || tensorData(rest).length !== 1) continue;
    const restValue = Number(tensorData(rest)[0]);
    // [-1] flattens anything; a fixed count must equal the channels of a pooled [N, C, 1, 1] map.
    const pooled = producer(x)?.opType === 'GlobalAveragePool' ? channelsOf(g, producer, x) : undefined;
    if (restValue !== -1 && restValue !== pooled) continue;
    Object.assign(n, makeNode('Flatten', [x], [n.output![0]], { axis: 1 }, n.name ?? undefined));
    report.flatten++;
  }

  // MatMul(x, W) + b -> Gemm(x, W, b) when x is 2-D (it comes out of Flatten or Gemm).
  for (const add of nodes) {
    if (drop.has(add) || add.opType !== 'Add') continue;
    for (const [mi, bi] of [[0, 1], [1, 0]]) {
      const mm = producer(add.input![mi]);
      const b = g.inits.get(add.input![bi]);
      if (!mm || mm.opType !== 'MatMul' || !b || b.dataType !== DataType.FLOAT || !onlyUse(g, mm.output![0], add)) continue;
      const w = g.inits.get(mm.input![1]);
      if (!w || dims(w).length !== 2 || tensorData(b).length !== dims(w)[1] || dims(b).length !== 1) continue;
      const src = producer(mm.input![0]);
      if (!src || (src.opType !== 'Flatten' && src.opType !== 'Gemm') || (src.opType === 'Flatten' && (attr(src, 'axis') ?? 1) !== 1)) continue;
      drop.add(mm);
      Object.assign(add, makeNode('Gemm', [mm.input![0], mm.input![1], add.input![bi]], [add.output![0]], {}, add.name ?? undefined));
      report.gemm++;
      break;
    }
  }

  g.graph.node = nodes.filter((n) => !drop.has(n));
  report.removed = drop.size + removeDeadNodes(g);
  if (report.hardSwish > 0) {
    const imp = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
    if (imp && Number(imp.version) < 14) imp.version = 14;
  }
  g.pruneUnusedInits();
  return report;
}

/** The channel count of a feature map, read off the Conv that made it (through per-channel ops). */
function channelsOf(g: GraphIndex, producer: (t: string) => NodeProto | undefined, t: string): number | undefined {
  const passThrough = new Set(['Relu', 'Clip', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'Tanh', 'LeakyRelu', 'MaxPool', 'AveragePool',
    'GlobalAveragePool', 'BatchNormalization', 'Add', 'Mul', 'Div', 'Sub', 'Identity']);
  for (let p = producer(t), hops = 0; p && hops < 64; p = producer(p.input![0]), hops++) {
    if (p.opType === 'Conv') {
      const w = g.inits.get(p.input![1]);
      return w ? dims(w)[0] : undefined;
    }
    if (!passThrough.has(p.opType!)) return undefined;
  }
  return undefined;
}

/** Drops nodes none of whose outputs is read by a node or is a graph output. */
export function removeDeadNodes(g: GraphIndex): number {
  let removed = 0;
  for (;;) {
    const read = new Set<string>((g.graph.output ?? []).map((o) => o.name!));
    for (const n of g.graph.node!) for (const i of n.input ?? []) read.add(i);
    const keep = g.graph.node!.filter((n) => (n.output ?? []).some((o) => o && read.has(o)));
    if (keep.length === g.graph.node!.length) return removed;
    removed += g.graph.node!.length - keep.length;
    g.graph.node = keep;
  }
}

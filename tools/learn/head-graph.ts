// Where a model's head starts, the frozen features there (computed by ONNX Runtime), and the
// model with a trained head spliced in: Flatten (when the features are not flat yet), then
// Gemm (+ Relu + Gemm for an MLP), and a Softmax if the old head ended in one. The new
// weights are float32 initializers, so quantize/compare/pack take the model as any other.
import {
  attr, DataType, decodeModel, dims, encodeModel, makeNode, makeTensor, makeValueInfo, tensorData, type ModelProto, type NodeProto,
} from '../../agent/onnx/model.js';
import { listNpyFiles, loadBatch, singleInput } from '../compress/dataset.js';
import { ToolErrors } from '../compress/errors.js';
import { GraphIndex } from '../compress/graph.js';
import { floatTensor, openSession, runSession } from '../compress/ort-session.js';
import { Progress } from '../compress/progress.js';
import type { Head } from './dense.js';

export interface HeadCut {
  /** The frozen tensor the head reads. */
  feature: string;
  output: string;
  /** Nodes after the cut that the new head replaces. */
  tail: NodeProto[];
  softmax: boolean;
  /** The old head's weights when it is one Gemm (or MatMul + Add): distillation starts from them. */
  existing?: Head;
}

/** --head: the input of the last Gemm/MatMul before the output; --from: a node's output or a tensor. */
export function findCut(model: ModelProto, from: string | undefined, what: string): HeadCut {
  const g = new GraphIndex(model.graph!);
  const outputs = model.graph!.output ?? [];
  if (outputs.length !== 1) throw ToolErrors.MODEL_UNSUPPORTED(`${what} has ${outputs.length} outputs; finetune and distill replace the head of a model with one output`);
  const output = outputs[0]!.name!;
  let feature: string;
  if (from) {
    const node = g.graph.node!.find((n) => n.name === from);
    feature = node ? node.output![0]! : from;
    if (!node && !g.producer(from) && !singleInputName(model, from)) {
      throw ToolErrors.USAGE(`--from ${from}: ${what} has no node or tensor of that name; "edge-model inspect" lists the nodes`);
    }
  } else {
    let n = g.producer(output);
    if (n?.opType === 'Softmax') n = g.producer(n.input![0]!);
    if (n?.opType === 'Add') n = g.producer(n.input![0]!) ?? n;
    if (!n || !['Gemm', 'MatMul'].includes(n.opType!)) {
      throw ToolErrors.MODEL_UNSUPPORTED(`${what}: no Gemm or MatMul produces the output ${output}; name the tensor the new head reads with --from NODE`);
    }
    feature = n.input![0]!;
  }
  // Everything needed to compute the feature stays; the rest is the tail.
  const keep = new Set<NodeProto>();
  const need = [feature];
  while (need.length) {
    const p = g.producer(need.pop()!);
    if (!p || keep.has(p)) continue;
    keep.add(p);
    need.push(...(p.input ?? []).filter(Boolean));
  }
  const tail = g.graph.node!.filter((n) => !keep.has(n));
  if (tail.length === 0) throw ToolErrors.USAGE(`${what}: nothing follows ${feature}; the head starts at the output itself`);
  const softmax = g.producer(output)?.opType === 'Softmax';
  return { feature, output, tail, softmax, existing: existingHead(g, tail.filter((n) => n.opType !== 'Softmax')) };
}

function singleInputName(model: ModelProto, name: string): boolean {
  return (model.graph!.input ?? []).some((i) => i.name === name);
}

function existingHead(g: GraphIndex, nodes: NodeProto[]): Head | undefined {
  const first = nodes[0];
  const wt = first && g.inits.get(first.input?.[1] ?? '');
  if (!first || !wt || wt.dataType !== DataType.FLOAT || dims(wt).length !== 2) return undefined;
  const [r, c] = dims(wt) as [number, number];
  const raw = tensorData(wt) as Float32Array;
  let bias: Float32Array | undefined;
  if (first.opType === 'Gemm' && nodes.length === 1) {
    if (attr(first, 'transA') || (attr(first, 'alpha') ?? 1) !== 1 || (attr(first, 'beta') ?? 1) !== 1) return undefined;
    const bt = first.input?.[2] ? g.inits.get(first.input[2]) : undefined;
    bias = bt ? (tensorData(bt) as Float32Array) : undefined;
    const transB = Boolean(attr(first, 'transB'));
    const [inDim, outDim] = transB ? [c, r] : [r, c];
    const w = new Float64Array(inDim * outDim);
    for (let i = 0; i < inDim; i++) for (let o = 0; o < outDim; o++) w[i * outDim + o] = transB ? raw[o * c + i]! : raw[i * c + o]!;
    const b = new Float64Array(outDim);
    if (bias && bias.length === outDim) b.set(bias);
    else if (bias) return undefined;
    return { layers: [{ inDim, outDim, w, b }] };
  }
  if (first.opType === 'MatMul' && nodes.length === 2 && nodes[1]!.opType === 'Add') {
    const bt = g.inits.get(nodes[1]!.input!.find((i) => i !== first.output![0]) ?? '');
    if (!bt || tensorData(bt).length !== c) return undefined;
    return { layers: [{ inDim: r, outDim: c, w: Float64Array.from(raw), b: Float64Array.from(tensorData(bt) as Float32Array) }] };
  }
  return undefined;
}

export interface Features {
  /** n x dim, flattened per sample. */
  features: Float64Array;
  dim: number;
  samples: number;
  /** The model's own output, n x width: its predictions before any training. */
  outputs: Float32Array;
  width: number;
  /** Rank of the cut tensor with its batch dimension (above 2: a Flatten goes before the head). */
  rank: number;
}

/** Runs the model over a data folder, returning the cut tensor and the output for every sample. */
export async function computeFeatures(modelFile: string, model: ModelProto, cut: HeadCut, dataDir: string, label = 'features'): Promise<Features> {
  const input = singleInput(model, modelFile);
  const probe = decodeModel(encodeModel(model), modelFile);
  if (!(probe.graph!.output ?? []).some((o) => o.name === cut.feature)) {
    probe.graph!.output!.push({ name: cut.feature, type: { tensorType: { elemType: DataType.FLOAT } } });
  }
  const session = await openSession(encodeModel(probe), modelFile);
  const files = listNpyFiles(dataDir, 'data', ToolErrors.DATA_INVALID);
  const batches = files.map((f) => loadBatch(f, input));
  const total = batches.reduce((s, b) => s + b.shape[0]!, 0);
  const progress = new Progress(label, total);
  const feats: Float32Array[] = [];
  const outs: Float32Array[] = [];
  let dim = 0;
  let width = 0;
  let rank = 2;
  for (const b of batches) {
    const r = await runSession(session, { [input.name]: floatTensor(b.data, b.shape) }, `${label} on ${b.file}`, [...new Set([cut.feature, cut.output])]);
    const f = r[cut.feature]!;
    const o = r[cut.output]!;
    dim = f.dims.slice(1).reduce((a, c) => a * c, 1);
    rank = f.dims.length;
    width = o.dims.slice(1).reduce((a, c) => a * c, 1);
    feats.push(Float32Array.from(f.data as Float32Array));
    outs.push(Float32Array.from(o.data as Float32Array));
    progress.tick(b.shape[0]);
  }
  progress.end();
  await session.release();
  const features = new Float64Array(total * dim);
  let k = 0;
  for (const p of feats) for (const v of p) features[k++] = v;
  const outputs = new Float32Array(total * width);
  k = 0;
  for (const p of outs) outputs.set(p, (k += p.length) - p.length);
  return { features, dim, samples: total, outputs, width, rank };
}

/** The model with the tail replaced by `head`; the output keeps its name. */
export function spliceHead(model: ModelProto, cut: HeadCut, head: Head, featureRank: number): ModelProto {
  const m = decodeModel(encodeModel(model));
  const g = new GraphIndex(m.graph!);
  const gone = new Set(cut.tail.map((n) => n.name));
  const nodes = m.graph!.node!.filter((n) => !gone.has(n.name));
  let x = cut.feature;
  if (featureRank !== 2) {
    const flat = g.fresh(`${cut.feature}_flat`);
    nodes.push(makeNode('Flatten', [x], [flat], { axis: 1 }, g.fresh('Flatten_head')));
    x = flat;
  }
  head.layers.forEach((d, l) => {
    const last = l + 1 === head.layers.length;
    // Stored as [out, in] with transB, as exporters write a Linear layer.
    const wt = new Float32Array(d.inDim * d.outDim);
    for (let i = 0; i < d.inDim; i++) for (let o = 0; o < d.outDim; o++) wt[o * d.inDim + i] = d.w[i * d.outDim + o]!;
    const w = g.addInit(makeTensor(g.fresh(`head${l}_weight`), [d.outDim, d.inDim], wt));
    const b = g.addInit(makeTensor(g.fresh(`head${l}_bias`), [d.outDim], Float32Array.from(d.b)));
    const y = last && !cut.softmax ? cut.output : g.fresh(`head${l}_out`);
    nodes.push(makeNode('Gemm', [x, w, b], [y], { transB: 1 }, g.fresh(`Gemm_head${l}`)));
    x = y;
    if (!last) {
      const r = g.fresh(`head${l}_relu`);
      nodes.push(makeNode('Relu', [x], [r], {}, g.fresh(`Relu_head${l}`)));
      x = r;
    }
  });
  if (cut.softmax) nodes.push(makeNode('Softmax', [x], [cut.output], { axis: 1 }, g.fresh('Softmax_head')));
  m.graph!.node = nodes;
  const old = m.graph!.output![0]!;
  const batch = old.type?.tensorType?.shape?.dim?.[0];
  const outDim = head.layers[head.layers.length - 1]!.outDim;
  m.graph!.output = [makeValueInfo(cut.output, DataType.FLOAT, [batch?.dimParam || (batch?.dimValue ? Number(batch.dimValue) : 'N'), outDim])];
  const produced = new Set(nodes.flatMap((n) => n.output ?? []));
  m.graph!.valueInfo = (m.graph!.valueInfo ?? []).filter((v) => produced.has(v.name!) && v.name !== cut.output);
  g.pruneUnusedInits();
  m.producerName = 'edge-model';
  return m;
}

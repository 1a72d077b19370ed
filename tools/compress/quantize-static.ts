// Static post-training quantization of Conv, Gemm and MatMul. Weights become int8 symmetric
// (per output channel by default), the activations around them uint8 asymmetric with ranges
// from calibration, biases int32. Every other operator stays float: DequantizeLinear feeds it
// and QuantizeLinear follows it, so any model quantizes and still runs.
//
// Two encodings of the same arithmetic:
//  - qdq: the float ops stay, with QuantizeLinear/DequantizeLinear pairs on tensors and
//    DequantizeLinear on int8 weights (what ONNX Runtime fuses into integer kernels);
//  - qoperator: QLinearConv for Conv, MatMulInteger (+ scale, + bias) for Gemm/MatMul.
import { attr, DataType, dims, makeNode, makeTensor, tensorData, type NodeProto } from '../../agent/onnx/model.js';
import type { Range } from './calibrate.js';
import type { GraphIndex } from './graph.js';
import { activationParams, quantizeBias, quantizeWeights, transpose2d, type ActivationParams } from './quant-math.js';

export type QuantFormat = 'qdq' | 'qoperator';

interface PlanItem {
  node: NodeProto;
  kind: 'conv' | 'gemm' | 'matmul';
  act: string;
  /** The quantized output (a Conv's, or its fused Relu's); Gemm/MatMul outputs stay float. */
  out?: string;
  relu?: NodeProto;
  weight: string;
  bias?: string;
  transB: boolean;
  alpha: number;
  beta: number;
}

export interface StaticPlan {
  items: PlanItem[];
  /** Activation tensors whose ranges calibration must provide. */
  tensors: string[];
}

const floatInit = (g: GraphIndex, name: string | undefined) => {
  const t = name ? g.inits.get(name) : undefined;
  return t && t.dataType === DataType.FLOAT ? t : undefined;
};

/** Which nodes become integer ops and which tensors need calibrated ranges. */
export function planStatic(g: GraphIndex, exclude: ReadonlySet<string> = new Set()): StaticPlan {
  const items: PlanItem[] = [];
  for (const n of g.graph.node!) {
    if (n.domain && n.domain !== 'ai.onnx') continue;
    if (exclude.has(n.name ?? '') || (n.output ?? []).some((o) => exclude.has(o))) continue;
    const [a, w, b] = n.input ?? [];
    if (!a || g.inits.has(a)) continue;
    const wt = floatInit(g, w);
    if (!wt) continue;
    if (n.opType === 'Conv') {
      if (dims(wt).length < 3 || (b && !floatInit(g, b))) continue;
      const y = n.output![0];
      const users = g.consumers(y);
      const relu = users.length === 1 && users[0].opType === 'Relu' && !g.isGraphOutput(y) ? users[0] : undefined;
      items.push({ node: n, kind: 'conv', act: a, out: relu ? relu.output![0] : y, relu, weight: w, bias: b || undefined, transB: false, alpha: 1, beta: 1 });
    } else if (n.opType === 'Gemm') {
      if (dims(wt).length !== 2 || attr(n, 'transA')) continue;
      const bias = b ? floatInit(g, b) : undefined;
      const n2 = dims(wt)[attr(n, 'transB') ? 0 : 1];
      if (b && (!bias || tensorData(bias).length !== n2)) continue;
      items.push({
        node: n, kind: 'gemm', act: a, weight: w, bias: b || undefined, transB: Boolean(attr(n, 'transB')),
        alpha: (attr(n, 'alpha') as number | undefined) ?? 1, beta: (attr(n, 'beta') as number | undefined) ?? 1,
      });
    } else if (n.opType === 'MatMul') {
      if (dims(wt).length !== 2) continue;
      items.push({ node: n, kind: 'matmul', act: a, weight: w, transB: false, alpha: 1, beta: 1 });
    }
  }
  const tensors = new Set<string>();
  for (const it of items) {
    tensors.add(it.act);
    if (it.out) tensors.add(it.out);
  }
  return { items, tensors: [...tensors] };
}

export interface StaticOptions {
  format: QuantFormat;
  perChannel: boolean;
}

export interface StaticReport {
  quantized: Record<string, number>;
  floatOps: Record<string, number>;
}

export function applyStatic(g: GraphIndex, plan: StaticPlan, ranges: Map<string, Range>, opts: StaticOptions): StaticReport {
  const params = new Map<string, ActivationParams & { scaleName: string; zpName: string; q: string; dq: string }>();
  for (const t of plan.tensors) {
    const p = activationParams(t, ranges.get(t) ?? { min: NaN, max: NaN });
    params.set(t, {
      ...p,
      scaleName: g.addInit(makeTensor(g.fresh(`${t}_scale`), [], new Float32Array([p.scale]))),
      zpName: g.addInit(makeTensor(g.fresh(`${t}_zero_point`), [], new Uint8Array([p.zeroPoint]))),
      q: g.fresh(`${t}_quantized`),
      dq: g.fresh(`${t}_dequantized`),
    });
  }
  const itemOf = new Map(plan.items.map((it) => [it.node, it]));
  const fusedRelu = new Set(plan.items.flatMap((it) => (it.relu ? [it.relu] : [])));
  const producedByItem = new Set(opts.format === 'qoperator' ? plan.items.flatMap((it) => (it.kind === 'conv' && it.out ? [it.out] : [])) : []);
  const pre: NodeProto[] = [];
  const body: NodeProto[] = [];
  const quantize = (t: string) => {
    const p = params.get(t)!;
    const nodes = [makeNode('QuantizeLinear', [t, p.scaleName, p.zpName], [p.q])];
    if (opts.format === 'qdq') nodes.push(makeNode('DequantizeLinear', [p.q, p.scaleName, p.zpName], [p.dq]));
    return nodes;
  };
  const quantizedReaders = new Map<string, number>();
  for (const it of plan.items) quantizedReaders.set(it.act, (quantizedReaders.get(it.act) ?? 0) + 1);
  /** A qoperator tensor written in uint8 that something outside the integer ops reads. */
  const needsFloat = (t: string) =>
    g.isGraphOutput(t) || g.consumers(t).some((c) => !(itemOf.get(c)?.act === t) && !fusedRelu.has(c));

  // Weights: int8 initializers (+ DequantizeLinear in qdq).
  const weightOf = (it: PlanItem) => {
    const wt = g.inits.get(it.weight)!;
    let shape = dims(wt);
    let w = tensorData(wt) as Float32Array;
    if (it.kind !== 'conv' && it.transB && opts.format === 'qoperator') {
      w = transpose2d(w, shape[0], shape[1]);
      shape = [shape[1], shape[0]];
    }
    // The output channel: Conv [M, C, kh, kw] axis 0; [K, N] axis 1; Gemm transB [N, K] axis 0.
    const axis = !opts.perChannel ? null : it.kind === 'conv' ? 0 : it.transB && opts.format === 'qdq' ? 0 : 1;
    const qw = quantizeWeights(w, shape, axis);
    const base = it.weight;
    const scaleShape = axis === null ? [] : [qw.scales.length];
    return {
      ...qw,
      shape,
      qName: g.addInit(makeTensor(g.fresh(`${base}_quantized`), shape, qw.q)),
      scaleName: g.addInit(makeTensor(g.fresh(`${base}_scale`), scaleShape, qw.scales)),
      zpName: g.addInit(makeTensor(g.fresh(`${base}_zero_point`), scaleShape, new Int8Array(qw.scales.length))),
    };
  };
  const biasOf = (it: PlanItem, inputScale: number, scales: Float32Array, channels: number) => {
    const b = tensorData(g.inits.get(it.bias!)!) as Float32Array;
    const bb = it.beta === 1 ? b : b.map((v) => v * it.beta);
    const full = scales.length === 1 ? new Float32Array(channels).fill(scales[0]) : scales;
    // alpha scales the product, so the bias must be expressed at alpha-free scale.
    const { q, scales: bs } = quantizeBias(it.alpha === 1 ? bb : bb.map((v) => v / it.alpha), inputScale, full);
    return {
      qName: g.addInit(makeTensor(g.fresh(`${it.bias}_quantized`), [q.length], q)),
      scaleName: g.addInit(makeTensor(g.fresh(`${it.bias}_scale`), [bs.length], bs)),
      zpName: g.addInit(makeTensor(g.fresh(`${it.bias}_zero_point`), [bs.length], new Int32Array(bs.length))),
    };
  };

  const quantized: Record<string, number> = {};
  /** Nodes that compute in integers (qdq: the float op between DequantizeLinear and QuantizeLinear). */
  const integerNodes = new Set<NodeProto>();
  const count = (k: string) => (quantized[k] = (quantized[k] ?? 0) + 1);

  for (const inp of g.graph.input ?? []) if (params.has(inp.name!)) pre.push(...quantize(inp.name!));

  for (const n of g.graph.node!) {
    const it = itemOf.get(n);
    if (opts.format === 'qoperator' && fusedRelu.has(n)) continue;
    if (!it) {
      const copy = { ...n };
      if (opts.format === 'qdq') copy.input = (n.input ?? []).map((i) => (params.has(i) ? params.get(i)!.dq : i));
      body.push(copy);
      for (const o of n.output ?? []) if (params.has(o) && !producedByItem.has(o)) body.push(...quantize(o));
      continue;
    }
    const a = params.get(it.act)!;
    const w = weightOf(it);
    const channels = it.kind === 'conv' ? w.shape[0] : opts.format === 'qdq' && it.transB ? w.shape[0] : w.shape[1];
    if (opts.format === 'qdq') {
      const wdq = g.fresh(`${it.weight}_dequantized`);
      pre.push(makeNode('DequantizeLinear', [w.qName, w.scaleName, w.zpName], [wdq], w.axis === null ? {} : { axis: w.axis }));
      const inputs = [a.dq, wdq];
      if (it.bias) {
        const b = biasOf(it, a.scale, w.scales, channels);
        const bdq = g.fresh(`${it.bias}_dequantized`);
        pre.push(makeNode('DequantizeLinear', [b.qName, b.scaleName, b.zpName], [bdq], { axis: 0 }));
        inputs.push(bdq);
      }
      const rewritten = { ...n, input: inputs };
      integerNodes.add(rewritten);
      body.push(rewritten);
      for (const o of n.output ?? []) if (params.has(o)) body.push(...quantize(o));
      count(`${n.opType}`);
      continue;
    }
    // qoperator
    if (it.kind === 'conv') {
      const y = params.get(it.out!)!;
      const inputs = [a.q, a.scaleName, a.zpName, w.qName, w.scaleName, w.zpName, y.scaleName, y.zpName];
      if (it.bias) inputs.push(biasOf(it, a.scale, w.scales, channels).qName);
      const attrs = (n.attribute ?? []).filter((x) => ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'].includes(x.name!));
      body.push({ opType: 'QLinearConv', domain: '', name: `${n.name ?? it.out}_quant`, input: inputs, output: [y.q], attribute: attrs });
      if (needsFloat(it.out!)) body.push(makeNode('DequantizeLinear', [y.q, y.scaleName, y.zpName], [it.out!]));
      count(it.relu ? 'Conv+Relu' : 'Conv');
      continue;
    }
    // Gemm / MatMul: integer product, then back to float at scale a * w (* alpha), + bias.
    const out = n.output![0];
    const acc = g.fresh(`${out}_int32`);
    const accF = g.fresh(`${out}_int32_float`);
    body.push(makeNode('MatMulInteger', [a.q, w.qName, a.zpName, g.addInit(makeTensor(g.fresh(`${it.weight}_zp0`), [], new Int8Array(1)))], [acc]));
    body.push(makeNode('Cast', [acc], [accF], { to: DataType.FLOAT }));
    const combined = w.scales.map((s) => s * a.scale * it.alpha);
    const scaleName = g.addInit(makeTensor(g.fresh(`${out}_output_scale`), w.axis === null ? [] : [combined.length], combined));
    if (it.bias) {
      const scaled = g.fresh(`${out}_scaled`);
      body.push(makeNode('Mul', [accF, scaleName], [scaled]));
      integerNodes.add(body[body.length - 1]);
      const b = tensorData(g.inits.get(it.bias)!) as Float32Array;
      const bName = g.addInit(makeTensor(g.fresh(`${it.bias}_beta`), [b.length], it.beta === 1 ? b : b.map((v) => v * it.beta)));
      body.push(makeNode('Add', [scaled, bName], [out]));
    } else {
      body.push(makeNode('Mul', [accF, scaleName], [out]));
    }
    integerNodes.add(body[body.length - 1]);
    count(n.opType!);
  }
  g.graph.node = [...pre, ...body];
  g.graph.valueInfo = [];
  g.pruneUnusedInits();
  const floatOps: Record<string, number> = {};
  const integer = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'MatMulInteger', 'Cast']);
  for (const n of g.graph.node) {
    if (integer.has(n.opType!)) continue;
    if (integerNodes.has(n)) continue;
    floatOps[n.opType!] = (floatOps[n.opType!] ?? 0) + 1;
  }
  return { quantized, floatOps };
}

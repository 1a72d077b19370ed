// Static post-training quantization of Conv, Gemm and MatMul. Weights become int8 symmetric
// (per output channel by default), the activations around them uint8 asymmetric with ranges
// from calibration (or uint16, W8A16: ONNX Runtime's com.microsoft Q/DQ), biases int32. Every other operator stays float: DequantizeLinear feeds it
// and QuantizeLinear follows it, so any model quantizes and still runs.
//
// Two encodings of the same arithmetic:
//  - qdq: the float ops stay, with QuantizeLinear/DequantizeLinear pairs on tensors and
//    DequantizeLinear on int8 weights (what ONNX Runtime fuses into integer kernels);
//  - qoperator: QLinearConv for Conv, MatMulInteger (+ scale, + bias) for Gemm/MatMul.
import { attr, DataType, dims, makeNode, makeTensor, tensorData, type NodeProto } from '../../agent/onnx/model.js';
import type { Range } from './calibrate.js';
import { ToolErrors } from './errors.js';
import type { GraphIndex } from './graph.js';
import { floatInit, layerNormChains, nonFloatTensors } from './static-patterns.js';
import { activationParams, quantizeBias, quantizeWeights, transpose2d, type ActivationBits, type ActivationParams, type WeightBits } from './quant-math.js';

export type QuantFormat = 'qdq' | 'qoperator';

interface PlanItem {
  node: NodeProto;
  kind: 'conv' | 'gemm' | 'matmul' | 'deconv';
  act: string;
  /** The quantized output (after a fused Relu/Clip); qoperator keeps Gemm/MatMul outputs float. */
  out?: string;
  /** A Relu or Clip(0, max) that only this node feeds: its clamp is the output range's. */
  relu?: NodeProto;
  weight: string;
  bias?: string;
  transB: boolean;
  alpha: number;
  beta: number;
}

export interface StaticPlan {
  items: PlanItem[];
  /** qdq: other operators computed between DequantizeLinear and QuantizeLinear. */
  others: NodeProto[];
  /** Outputs of order-only operators (MaxPool, Reshape...): they reuse their input's scale. */
  aliases: Map<string, string>;
  /** Constant float operands of Add/Mul among `others`, quantized per tensor. */
  constOperands: Set<string>;
  /** Activation tensors whose ranges calibration must provide. */
  tensors: string[];
}

/** Operators the native engine computes on quantized tensors (qdq puts Q/DQ around them). */
const OTHER_OPS = new Set(['Add', 'Mul', 'Relu', 'Clip', 'Sigmoid', 'Tanh', 'LeakyRelu', 'HardSigmoid', 'HardSwish',
  'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity',
  // Float inside in the engine (int8 in and out): Softmax, Resize, Sub, Div by a constant,
  // MatMul of two activations (compile/float.ts).
  'Softmax', 'Resize', 'Sub', 'Div', 'MatMul',
  // Data movement and selection (the engine's copy family).
  'Concat', 'Split', 'Slice', 'Transpose', 'Pad', 'Max', 'Min']);
/**
 * Operators that only move or select values: the output keeps the input's quantization (as
 * ONNX Runtime's quantizer does), so the int8 op is an exact copy. Resize 'nearest' joins them
 * in planStatic. Concat keeps its own range (its inputs are requantized to it).
 */
const ALIAS_OPS = new Set(['MaxPool', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Split', 'Slice', 'Transpose']);


/** Relu, or Clip with a constant lower bound of 0: a clamp a quantized output range can express. */
function fusableClamp(g: GraphIndex, n: NodeProto | undefined): boolean {
  if (!n) return false;
  if (n.opType === 'Relu') return true;
  if (n.opType !== 'Clip') return false;
  const lo = n.input![1] ? floatInit(g, n.input![1]) : undefined;
  return Boolean(lo && Number(tensorData(lo)[0]) === 0 && (!n.input![2] || floatInit(g, n.input![2])));
}

/** Which nodes become integer ops and which tensors need calibrated ranges. */
export function planStatic(g: GraphIndex, exclude: ReadonlySet<string> = new Set(), format: QuantFormat = 'qdq'): StaticPlan {
  const items: PlanItem[] = [];
  const excluded = (n: NodeProto) => exclude.has(n.name ?? '') || (n.output ?? []).some((o) => exclude.has(o));
  const fusedAfter = (y: string, allowClip: boolean) => {
    const users = g.consumers(y);
    const u = users.length === 1 && !g.isGraphOutput(y) ? users[0] : undefined;
    return u && !excluded(u) && fusableClamp(g, u) && (allowClip || u.opType === 'Relu') ? u : undefined;
  };
  for (const n of g.graph.node!) {
    if ((n.domain && n.domain !== 'ai.onnx') || excluded(n)) continue;
    const [a, w, b] = n.input ?? [];
    if (!a || g.inits.has(a)) continue;
    const wt = floatInit(g, w);
    if (!wt) continue;
    if (n.opType === 'Conv') {
      if (dims(wt).length < 3 || (b && !floatInit(g, b))) continue;
      const y = n.output![0];
      const relu = fusedAfter(y, true);
      items.push({ node: n, kind: 'conv', act: a, out: relu ? relu.output![0] : y, relu, weight: w, bias: b || undefined, transB: false, alpha: 1, beta: 1 });
    } else if (n.opType === 'ConvTranspose' && format === 'qdq') {
      // The engine's deconv: int8 weights (per tensor, or per output channel on axis 1 with
      // group 1), the bias left float (the compiler rounds it to the accumulator's scale).
      if (dims(wt).length !== 4 || (b && !floatInit(g, b))) continue;
      const y = n.output![0];
      const relu = fusedAfter(y, true);
      items.push({ node: n, kind: 'deconv', act: a, out: relu ? relu.output![0] : y, relu, weight: w, bias: b || undefined, transB: false, alpha: 1, beta: 1 });
    } else if (n.opType === 'Gemm') {
      if (dims(wt).length !== 2 || attr(n, 'transA')) continue;
      const bias = b ? floatInit(g, b) : undefined;
      const n2 = dims(wt)[attr(n, 'transB') ? 0 : 1];
      if (b && (!bias || tensorData(bias).length !== n2)) continue;
      const relu = format === 'qdq' ? fusedAfter(n.output![0], true) : undefined;
      items.push({
        node: n, kind: 'gemm', act: a, weight: w, bias: b || undefined, transB: Boolean(attr(n, 'transB')),
        out: format === 'qdq' ? (relu ? relu.output![0] : n.output![0]) : undefined, relu,
        alpha: (attr(n, 'alpha') as number | undefined) ?? 1, beta: (attr(n, 'beta') as number | undefined) ?? 1,
      });
    } else if (n.opType === 'MatMul') {
      if (dims(wt).length !== 2) continue;
      const relu = format === 'qdq' ? fusedAfter(n.output![0], true) : undefined;
      items.push({ node: n, kind: 'matmul', act: a, weight: w, transB: false, alpha: 1, beta: 1, out: format === 'qdq' ? (relu ? relu.output![0] : n.output![0]) : undefined, relu });
    }
  }
  const tensors = new Set<string>();
  for (const it of items) {
    tensors.add(it.act);
    if (it.out) tensors.add(it.out);
  }
  const others: NodeProto[] = [];
  const aliases = new Map<string, string>();
  const constOperands = new Set<string>();
  if (format === 'qdq') {
    const fused = new Set(items.flatMap((it) => (it.relu ? [it.relu] : [])));
    const computed = new Set(items.map((it) => it.node));
    const notFloat = nonFloatTensors(g);
    const isConst = (t: string) => g.inits.has(t) || g.producer(t)?.opType === 'Constant';
    // A LayerNorm spelled out: quantized at its ends only (the engine fuses the chain).
    const chains = layerNormChains(g, isConst);
    const inChain = new Set(chains.flatMap((ch) => ch.nodes));
    for (const ch of chains) {
      if (ch.nodes.some((n) => excluded(n) || computed.has(n) || fused.has(n)) || notFloat.has(ch.x)) continue;
      others.push(...ch.nodes);
      tensors.add(ch.x);
      tensors.add(ch.out);
    }
    for (const n of g.graph.node!) {
      if (computed.has(n) || fused.has(n) || inChain.has(n) || excluded(n) || (n.domain && n.domain !== 'ai.onnx') || !OTHER_OPS.has(n.opType!)) continue;
      const outs = (n.output ?? []).filter(Boolean);
      if (outs.length !== 1 && n.opType !== 'Split') continue;
      // A Concat that is a graph output stays float: its inputs may have nothing in common (a
      // detector's boxes in pixels beside scores in 0..1), one int8 scale would lose the scores.
      if (outs.length !== (n.output ?? []).length || outs.some((o) => notFloat.has(o) || g.isGraphOutput(o) && (n.opType === 'Split' || n.opType === 'Concat'))) continue;
      const op = n.opType!;
      const binary = op === 'Add' || op === 'Mul' || op === 'Sub' || op === 'Div';
      const multi = op === 'Concat' || op === 'MatMul' || op === 'Max' || op === 'Min';
      const acts = binary || multi ? n.input!.filter((i) => i && !isConst(i)) : [n.input![0]];
      if (acts.length === 0 || acts.some((i) => !i || isConst(i) || notFloat.has(i))) continue;
      if (multi && acts.length !== n.input!.length) continue;
      if (op === 'MatMul' && acts.length !== 2) continue;
      if (binary) {
        const consts = n.input!.filter((i) => isConst(i));
        if (consts.some((c) => !floatInit(g, c))) continue;
        const scalar = (c: string) => tensorData(g.inits.get(c)!).length === 1;
        // Div: only by a single constant (the engine's table); Sub/Div scalars stay float, exact.
        if (op === 'Div' && !(consts.length === 1 && consts[0] === n.input![1] && scalar(consts[0]))) continue;
        if (op === 'Sub' || op === 'Div') {
          if (consts.some((c) => !scalar(c))) continue;
        } else {
          consts.forEach((c) => constOperands.add(c));
        }
      }
      if (op === 'Resize' && String(attr(n, 'mode') ?? 'nearest') !== 'nearest' && String(attr(n, 'mode') ?? 'nearest') !== 'linear') continue;
      others.push(n);
      acts.forEach((t) => tensors.add(t));
      const alias = ALIAS_OPS.has(op) || (op === 'Resize' && String(attr(n, 'mode') ?? 'nearest') === 'nearest');
      for (const o of outs) {
        if (alias) aliases.set(o, n.input![0]);
        else tensors.add(o);
      }
    }
  }
  for (const a of aliases.keys()) tensors.delete(a);
  return { items, others, aliases, constOperands, tensors: [...tensors] };
}

export interface StaticOptions {
  format: QuantFormat;
  perChannel: boolean;
  /**
   * 7: weights of every layer but depthwise convolutions in [-63, 63] (the native engine's
   * AVX2 vpmaddubsw kernel; its depthwise path gains nothing from 7 bits). Default 8.
   */
  weightBits?: WeightBits;
  /**
   * 16: activations (and constant operands) uint16, through QuantizeLinear/DequantizeLinear of
   * ONNX Runtime's com.microsoft domain (the default domain takes 16 bits from opset 21); qdq
   * only. Default 8.
   */
  activationBits?: ActivationBits;
  /**
   * Per-channel means of each quantized op's input over the calibration set: the bias then
   * absorbs the average error the rounded weights make (bias correction, Nagel et al. 2019).
   */
  inputMeans?: Map<string, Float64Array>;
}

export interface StaticReport {
  quantized: Record<string, number>;
  floatOps: Record<string, number>;
}

export function applyStatic(g: GraphIndex, plan: StaticPlan, ranges: Map<string, Range>, opts: StaticOptions): StaticReport {
  const bits = opts.activationBits ?? 8;
  if (bits === 16 && opts.format !== 'qdq') throw ToolErrors.USAGE('16-bit activations are written as QuantizeLinear/DequantizeLinear only (--format qdq); QLinearConv takes 8 bits');
  /** Activation zero points: uint8, or uint16 for 16 bits. */
  const zeroPoints = (v: number[]) => (bits === 16 ? Uint16Array.from(v) : Uint8Array.from(v));
  /** 16-bit Q/DQ are ONNX Runtime's contrib operators below opset 21. */
  const qdqDomain = bits === 16 ? { domain: 'com.microsoft' } : {};
  const params = new Map<string, ActivationParams & { scaleName: string; zpName: string; q: string; dq: string }>();
  for (const t of plan.tensors) {
    const p = activationParams(t, ranges.get(t) ?? { min: NaN, max: NaN }, bits);
    params.set(t, {
      ...p,
      scaleName: g.addInit(makeTensor(g.fresh(`${t}_s`), [], new Float32Array([p.scale]))),
      zpName: g.addInit(makeTensor(g.fresh(`${t}_zp`), [], zeroPoints([p.zeroPoint]))),
      q: g.fresh(`${t}_q`),
      dq: g.fresh(`${t}_dq`),
    });
  }
  // Order-only operators pass their input's parameters on (node order is topological).
  for (const n of g.graph.node!) {
    for (const t of n.output ?? []) {
      const src = plan.aliases.get(t);
      if (src === undefined) continue;
      const p = params.get(src);
      if (!p) continue;
      params.set(t, { ...p, q: g.fresh(`${t}_q`), dq: g.fresh(`${t}_dq`) });
    }
  }
  const originalNames = new Set(g.graph.node!.map((n) => n.name));
  const itemOf = new Map(plan.items.map((it) => [it.node, it]));
  const fusedRelu = new Set(plan.items.flatMap((it) => (it.relu ? [it.relu] : [])));
  const producedByItem = new Set(opts.format === 'qoperator' ? plan.items.flatMap((it) => (it.kind === 'conv' && it.out ? [it.out] : [])) : []);
  const pre: NodeProto[] = [];
  const body: NodeProto[] = [];
  // qdq: a quantized graph output keeps its name on the DequantizeLinear; the op that made it
  // writes a renamed float tensor that only the QuantizeLinear reads.
  const renamed = new Map<string, string>();
  if (opts.format === 'qdq') {
    for (const [t, p] of params) {
      if (!g.isGraphOutput(t) || !g.producer(t)) continue;
      renamed.set(t, g.fresh(`${t}_float`));
      p.dq = t;
    }
  }
  const outputsOf = (n: NodeProto) => (n.output ?? []).map((o) => renamed.get(o) ?? o);
  const quantize = (t: string) => {
    const p = params.get(t)!;
    const nodes = [{ ...makeNode('QuantizeLinear', [renamed.get(t) ?? t, p.scaleName, p.zpName], [p.q]), ...qdqDomain }];
    if (opts.format === 'qdq') nodes.push({ ...makeNode('DequantizeLinear', [p.q, p.scaleName, p.zpName], [p.dq]), ...qdqDomain });
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
    // ConvTranspose [C, M/group, kh, kw]: the output channel is axis 1, per channel only with group 1.
    const axis = !opts.perChannel ? null : it.kind === 'conv' ? 0 : it.kind === 'deconv' ? (Number(attr(it.node, 'group') ?? 1) === 1 ? 1 : null) : it.transB && opts.format === 'qdq' ? 0 : 1;
    // Depthwise Conv [C, 1, kh, kw] with group C keeps 8 bits.
    const depthwise = it.kind === 'conv' && shape[1] === 1 && Number(attr(it.node, 'group') ?? 1) > 1;
    const qw = quantizeWeights(w, shape, axis, depthwise ? 8 : opts.weightBits ?? 8);
    const base = it.weight;
    const scaleShape = axis === null ? [] : [qw.scales.length];
    return {
      ...qw,
      shape,
      float: w,
      qName: g.addInit(makeTensor(g.fresh(`${base}_q`), shape, qw.q)),
      scaleName: g.addInit(makeTensor(g.fresh(`${base}_s`), scaleShape, qw.scales)),
      // Symmetric weights have zero points of 0, which DequantizeLinear assumes when the input
      // is absent; QLinearConv requires the input.
      zpName: opts.format === 'qoperator' ? g.addInit(makeTensor(g.fresh(`${base}_zp`), scaleShape, new Int8Array(qw.scales.length))) : '',
    };
  };
  /** The expected output error of the rounded weights: sum over inputs of (wq - w) * E[x]. */
  const biasCorrection = (it: PlanItem, w: Float32Array, shape: number[], qw: { q: Int8Array; scales: Float32Array; axis: number | null }, mean: Float64Array | undefined, channels: number): Float64Array | undefined => {
    if (!mean) return undefined;
    const delta = new Float64Array(channels);
    const sc = (i: number, ch: number) => qw.scales[qw.axis === null ? 0 : ch] * qw.q[i];
    if (it.kind === 'conv') {
      const [m, cPerGroup] = shape;
      const per = shape.slice(1).reduce((a, b) => a * b, 1);
      const k = per / cPerGroup;
      const groups = mean.length / cPerGroup;
      if (!Number.isInteger(groups) || m % groups !== 0) return undefined;
      for (let o = 0; o < m; o++) {
        const g0 = Math.floor(o / (m / groups)) * cPerGroup;
        for (let i = 0; i < per; i++) delta[o] += (sc(o * per + i, o) - w[o * per + i]) * mean[g0 + Math.floor(i / k)];
      }
      return delta;
    }
    // Gemm / MatMul: [K, N], or [N, K] with transB (qdq keeps the original layout).
    const nOut = channels;
    const kIn = w.length / nOut;
    if (mean.length !== kIn) return undefined;
    const transposed = it.transB && opts.format === 'qdq';
    for (let i = 0; i < w.length; i++) {
      const [kk, nn] = transposed ? [i % kIn, Math.floor(i / kIn)] : [Math.floor(i / nOut), i % nOut];
      delta[nn] += (sc(i, nn) - w[i]) * mean[kk];
    }
    return delta;
  };
  const biasOf = (it: PlanItem, inputScale: number, scales: Float32Array, channels: number) => {
    const b = tensorData(g.inits.get(it.bias!)!) as Float32Array;
    const bb = it.beta === 1 ? b : b.map((v) => v * it.beta);
    const full = scales.length === 1 ? new Float32Array(channels).fill(scales[0]) : scales;
    // alpha scales the product, so the bias must be expressed at alpha-free scale.
    const { q, scales: bs } = quantizeBias(it.alpha === 1 ? bb : bb.map((v) => v / it.alpha), inputScale, full);
    return {
      qName: g.addInit(makeTensor(g.fresh(`${it.bias}_q`), [q.length], q)),
      scaleName: g.addInit(makeTensor(g.fresh(`${it.bias}_s`), [bs.length], bs)),
    };
  };

  const quantized: Record<string, number> = {};
  /** Nodes that compute in integers (qdq: the float op between DequantizeLinear and QuantizeLinear). */
  const integerNodes = new Set<NodeProto>();
  const count = (k: string) => (quantized[k] = (quantized[k] ?? 0) + 1);

  for (const inp of g.graph.input ?? []) if (params.has(inp.name!)) pre.push(...quantize(inp.name!));
  // Constant operands of quantized Add/Mul: uint8 (or uint16) per tensor over their own range.
  const constDq = new Map<string, string>();
  for (const c of plan.constOperands) {
    const v = tensorData(g.inits.get(c)!) as Float32Array;
    let lo = 0;
    let hi = 0;
    for (const x of v) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    const p = activationParams(c, { min: lo, max: hi }, bits);
    const top = bits === 16 ? 65535 : 255;
    const q = zeroPoints(Array.from(v, (x) => Math.max(0, Math.min(top, Math.round(x / p.scale) + p.zeroPoint))));
    const qName = g.addInit(makeTensor(g.fresh(`${c}_q`), dims(g.inits.get(c)!), q));
    const sName = g.addInit(makeTensor(g.fresh(`${c}_s`), [], new Float32Array([p.scale])));
    const zName = g.addInit(makeTensor(g.fresh(`${c}_zp`), [], zeroPoints([p.zeroPoint])));
    const dq = g.fresh(`${c}_dq`);
    pre.push({ ...makeNode('DequantizeLinear', [qName, sName, zName], [dq]), ...qdqDomain });
    constDq.set(c, dq);
  }
  const otherSet = new Set(plan.others);

  for (const n of g.graph.node!) {
    const it = itemOf.get(n);
    if (opts.format === 'qoperator' && fusedRelu.has(n)) continue;
    if (!it) {
      const copy = { ...n, output: outputsOf(n) };
      if (opts.format === 'qdq') copy.input = (n.input ?? []).map((i) => (params.has(i) ? params.get(i)!.dq : constDq.get(i) ?? i));
      body.push(copy);
      if (opts.format === 'qdq' && fusedRelu.has(n)) integerNodes.add(copy);
      if (otherSet.has(n)) {
        integerNodes.add(copy);
        count(n.opType!);
      }
      for (const o of n.output ?? []) if (params.has(o) && !producedByItem.has(o)) body.push(...quantize(o));
      continue;
    }
    const a = params.get(it.act)!;
    const w = weightOf(it);
    const channels = it.kind === 'conv' ? w.shape[0] : it.kind === 'deconv' ? w.shape[1] * Number(attr(n, 'group') ?? 1) : opts.format === 'qdq' && it.transB ? w.shape[0] : w.shape[1];
    const correctable = it.alpha === 1 && it.kind !== 'deconv' && !(it.kind === 'matmul' && opts.format === 'qdq');
    const corr = correctable ? biasCorrection(it, w.float, w.shape, w, opts.inputMeans?.get(it.act), channels) : undefined;
    if (corr) {
      const old = it.bias ? (tensorData(g.inits.get(it.bias)!) as Float32Array) : new Float32Array(channels);
      const beta = it.bias ? it.beta : 1;
      // The corrected bias is stored at beta 1 (the Gemm/QLinearConv reads it as is).
      const fixed = Float32Array.from(old, (v, c) => v * beta - corr[c]);
      it.bias = g.addInit(makeTensor(g.fresh(`${it.bias ?? `${it.weight}_b`}_bc`), [channels], fixed));
      it.beta = 1;
      if (opts.format === 'qdq' && n.opType === 'Gemm') n.attribute = (n.attribute ?? []).filter((x) => x.name !== 'beta');
    }
    if (opts.format === 'qdq') {
      const wdq = g.fresh(`${it.weight}_dq`);
      pre.push(makeNode('DequantizeLinear', [w.qName, w.scaleName], [wdq], w.axis === null ? {} : { axis: w.axis }));
      const inputs = [a.dq, wdq];
      if (it.bias) {
        const b = biasOf(it, a.scale, w.scales, channels);
        const bdq = g.fresh(`${it.bias}_dq`);
        pre.push(makeNode('DequantizeLinear', [b.qName, b.scaleName], [bdq], { axis: 0 }));
        inputs.push(bdq);
      }
      const rewritten = { ...n, input: inputs, output: outputsOf(n) };
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
  // Generated nodes carry no name (ONNX makes it optional): on a 10 kB model the names
  // would cost more than the biases.
  for (const n of g.graph.node) if (!originalNames.has(n.name)) delete n.name;
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

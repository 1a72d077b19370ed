// The learnable affine (x * a + b, a and b scalars or per-channel constants) PP-LCNetV3 puts
// after every convolution and after every HardSwish, folded into the convolution next to it,
// so the quantizer does not round the same values two more times per affine. Exact in float:
// a Conv followed by Mul(a) and Add(b) is a Conv with weights * a and bias * a + b; a Mul(a)
// before a Conv scales its weights per input channel (zero padding stays zero), and an Add(b)
// before a Conv without padding adds b times the weights' sum to its bias.
import { attr, DataType, dims, makeTensor, tensorData, type NodeProto } from '../../agent/onnx/model.js';
import type { GraphIndex } from './graph.js';

/** The constant operand of a two-input Mul/Add whose other input is `x`, as per-channel values. */
function constOperand(g: GraphIndex, n: NodeProto, x: string, channels: number): Float32Array | undefined {
  if ((n.input ?? []).length !== 2) return undefined;
  const [a, b] = n.input!;
  const k = a === x ? b : b === x ? a : undefined;
  if (k === undefined || k === x) return undefined;
  const t = g.inits.get(k);
  if (!t || t.dataType !== DataType.FLOAT) return undefined;
  const v = tensorData(t) as Float32Array;
  const d = dims(t);
  if (v.length === 1) return new Float32Array(channels).fill(v[0]);
  // [C, 1, 1] or [1, C, 1, 1]: per channel of an NCHW tensor.
  const perChannel = (d.length === 3 && d[0] === channels && d[1] === 1 && d[2] === 1) || (d.length === 4 && d[0] === 1 && d[1] === channels && d[2] === 1 && d[3] === 1);
  return perChannel && v.length === channels ? Float32Array.from(v) : undefined;
}

const onlyReader = (g: GraphIndex, t: string): NodeProto | undefined => {
  const r = g.consumers(t);
  return r.length === 1 && !g.isGraphOutput(t) ? r[0] : undefined;
};

function convWeights(g: GraphIndex, conv: NodeProto) {
  const w = g.inits.get(conv.input![1]);
  if (!w || w.dataType !== DataType.FLOAT || dims(w).length !== 4) return undefined;
  const bName = conv.input![2];
  const bt = bName ? g.inits.get(bName) : undefined;
  if (bName && (!bt || bt.dataType !== DataType.FLOAT)) return undefined;
  const m = dims(w)[0];
  return { w, shape: dims(w), data: tensorData(w) as Float32Array, bias: bt ? Float32Array.from(tensorData(bt) as Float32Array) : new Float32Array(m), m };
}

function setConv(g: GraphIndex, conv: NodeProto, shape: number[], w: Float32Array, b: Float32Array) {
  const wn = g.addInit(makeTensor(g.fresh(`${conv.input![1]}_affine`), shape, w));
  const bn = g.addInit(makeTensor(g.fresh(`${conv.output![0]}_affine_bias`), [b.length], b));
  conv.input = [conv.input![0], wn, bn];
}

/** Conv -> Mul(const) [-> Add(const)]: into the Conv. */
function foldAfterConv(g: GraphIndex, skip: Set<string>): number {
  let folded = 0;
  for (const conv of [...g.graph.node!]) {
    if (conv.opType !== 'Conv' || (conv.output ?? []).length !== 1 || skip.has(conv.name ?? '') || skip.has(conv.output![0])) continue;
    for (;;) {
      const cw = convWeights(g, conv);
      if (!cw) break;
      const y = conv.output![0];
      const next = onlyReader(g, y);
      if (!next || (next.opType !== 'Mul' && next.opType !== 'Add') || skip.has(next.name ?? '') || skip.has(next.output![0])) break;
      const k = constOperand(g, next, y, cw.m);
      if (!k) break;
      const per = cw.data.length / cw.m;
      if (next.opType === 'Mul') {
        setConv(g, conv, cw.shape, Float32Array.from(cw.data, (v, i) => v * k[Math.floor(i / per)]), Float32Array.from(cw.bias, (v, c) => v * k[c]));
      } else {
        setConv(g, conv, cw.shape, cw.data, Float32Array.from(cw.bias, (v, c) => v + k[c]));
      }
      conv.output = [next.output![0]];
      g.graph.node = g.graph.node!.filter((n) => n !== next);
      folded++;
    }
  }
  return folded;
}

const hasPadding = (conv: NodeProto) => {
  const autoPad = String(attr(conv, 'auto_pad') ?? 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') return true;
  const pads = (attr(conv, 'pads') as number[] | undefined) ?? [];
  return pads.some((p) => Number(p) !== 0);
};

/** Mul(const) [-> Add(const)] -> Conv: Mul into the weights, Add into the bias (no padding only). */
function foldBeforeConv(g: GraphIndex, skip: Set<string>): number {
  let folded = 0;
  for (const mul of [...g.graph.node!]) {
    if (mul.opType !== 'Mul' || !g.graph.node!.includes(mul) || skip.has(mul.name ?? '') || skip.has(mul.output![0])) continue;
    const x = mul.input!.find((i) => !g.inits.has(i));
    if (x === undefined) continue;
    let last: NodeProto = mul;
    let add: NodeProto | undefined;
    const afterMul = onlyReader(g, mul.output![0]);
    if (afterMul?.opType === 'Add') {
      add = afterMul;
      last = afterMul;
    }
    const conv = onlyReader(g, last.output![0]);
    if (!conv || conv.opType !== 'Conv' || conv.input![0] !== last.output![0] || skip.has(conv.name ?? '') || (add && skip.has(add.name ?? ''))) continue;
    const cw = convWeights(g, conv);
    if (!cw) continue;
    const group = Number(attr(conv, 'group') ?? 1);
    const cPerGroup = cw.shape[1];
    const cin = cPerGroup * group;
    const a = constOperand(g, mul, x, cin);
    if (!a) continue;
    const b = add ? constOperand(g, add, mul.output![0], cin) : undefined;
    if (add && !b) continue;
    if (add && hasPadding(conv)) add = undefined;
    if (!add && last !== mul && a.some((v) => v === 0)) continue;
    const k = cw.shape[2] * cw.shape[3];
    const mPerGroup = cw.m / group;
    // Input channel of weight element i ([M, C/group, kh, kw]).
    const inCh = (i: number) => Math.floor(Math.floor(i / (cPerGroup * k)) / mPerGroup) * cPerGroup + (Math.floor(i / k) % cPerGroup);
    const w2 = Float32Array.from(cw.data, (v, i) => v * a[inCh(i)]);
    const b2 = Float32Array.from(cw.bias);
    if (add && b) for (let i = 0; i < cw.data.length; i++) b2[Math.floor(i / (cPerGroup * k))] += cw.data[i] * b[inCh(i)];
    const gone = new Set<NodeProto>([mul]);
    if (add) {
      gone.add(add);
      conv.input![0] = x;
    } else if (last !== mul) {
      // The Add stays (the Conv pads with zeros): it reads x now, with b / a for its constant.
      const bk = constOperand(g, last, mul.output![0], cin)!;
      const q = Float32Array.from(bk, (v, c) => v / a[c]);
      const uniform = q.every((v) => v === q[0]);
      const kn = g.addInit(makeTensor(g.fresh(`${last.output![0]}_affine_k`), uniform ? [] : [1, cin, 1, 1], uniform ? q.subarray(0, 1) : q));
      last.input = [x, kn];
    } else {
      conv.input![0] = x;
    }
    setConv(g, conv, cw.shape, w2, b2);
    g.graph.node = g.graph.node!.filter((n) => !gone.has(n));
    folded++;
  }
  return folded;
}

/** Folds them all; nodes (or their outputs) named in `skip` stay as they are. */
export function foldAffines(g: GraphIndex, skip: Set<string> = new Set()): number {
  const n = foldAfterConv(g, skip) + foldBeforeConv(g, skip);
  if (n) g.pruneUnusedInits();
  return n;
}

// BatchNormalization after a Conv (or a ConvTranspose, whose output channel is axis 1 of its
// [C, M/group, kh, kw] weights) is an affine map per output channel, so it folds into the
// weights and bias: one op fewer at run time, and the quantizer sees the weights the
// device will actually multiply by.
import { attr, DataType, dims, makeTensor, tensorData } from '../../agent/onnx/model.js';
import type { GraphIndex } from './graph.js';

/**
 * Add of a per-channel constant ([M, 1, 1] or [1, M, 1, 1]) right after a Conv/ConvTranspose
 * (PaddleOCR's det writes its ConvTranspose bias so): into the bias, so a BatchNormalization
 * after it becomes foldable too.
 */
function foldBiasAdds(g: GraphIndex): number {
  let folded = 0;
  for (const add of [...g.graph.node!]) {
    if (add.opType !== 'Add' || add.input!.length !== 2) continue;
    const [x, k] = g.inits.has(add.input![1]) ? add.input! : [add.input![1], add.input![0]];
    const conv = g.producer(x);
    const kt = g.inits.get(k);
    if (!conv || (conv.opType !== 'Conv' && conv.opType !== 'ConvTranspose') || !kt || kt.dataType !== DataType.FLOAT) continue;
    if (g.consumers(x).length !== 1 || g.isGraphOutput(x)) continue;
    const wInit = g.inits.get(conv.input![1]);
    if (!wInit || dims(wInit).length !== 4) continue;
    const m = conv.opType === 'Conv' ? dims(wInit)[0] : dims(wInit)[1] * Number(attr(conv, 'group') ?? 1);
    const ks = dims(kt);
    const perChannel = (ks.length === 3 && ks[0] === m && ks[1] === 1 && ks[2] === 1) || (ks.length === 4 && ks[0] === 1 && ks[1] === m && ks[2] === 1 && ks[3] === 1);
    if (!perChannel) continue;
    const old = conv.input![2] ? g.inits.get(conv.input![2]) : undefined;
    if (conv.input![2] && (!old || old.dataType !== DataType.FLOAT)) continue;
    const kv = tensorData(kt) as Float32Array;
    const b = old ? (tensorData(old) as Float32Array) : new Float32Array(m);
    const bName = g.addInit(makeTensor(g.fresh(`${add.output![0]}_bias`), [m], Float32Array.from(b, (v, c) => v + kv[c])));
    conv.input = [conv.input![0], conv.input![1], bName];
    conv.output = [add.output![0]];
    g.graph.node = g.graph.node!.filter((n) => n !== add);
    folded++;
  }
  return folded;
}

export function foldBatchNorms(g: GraphIndex): number {
  let folded = 0;
  const biasAdds = foldBiasAdds(g);
  for (const bn of [...g.graph.node!]) {
    if (bn.opType !== 'BatchNormalization' || (bn.output ?? []).filter(Boolean).length !== 1) continue;
    const [x, scaleN, biasN, meanN, varN] = bn.input!;
    const conv = g.producer(x);
    if (!conv || (conv.opType !== 'Conv' && conv.opType !== 'ConvTranspose') || g.consumers(x).length !== 1 || g.isGraphOutput(x)) continue;
    const wInit = g.inits.get(conv.input![1]);
    const params = [scaleN, biasN, meanN, varN].map((n) => g.inits.get(n));
    if (!wInit || wInit.dataType !== DataType.FLOAT || params.some((p) => !p || p.dataType !== DataType.FLOAT)) continue;
    const convBiasInit = conv.input![2] ? g.inits.get(conv.input![2]) : undefined;
    if (conv.input![2] && !convBiasInit) continue;

    const eps = (attr(bn, 'epsilon') as number | undefined) ?? 1e-5;
    const [gamma, beta, mean, variance] = params.map((p) => tensorData(p!) as Float32Array);
    const wShape = dims(wInit);
    const transposed = conv.opType === 'ConvTranspose';
    const group = transposed ? Number(attr(conv, 'group') ?? 1) : 1;
    // Output channel of weight element i: Conv [M, ...] axis 0; ConvTranspose [C, M/group, ...]
    // axis 1, in group (input channel / (C/group)).
    const mg = transposed ? wShape[1] : wShape[0];
    const m = mg * group;
    const inner = wShape.slice(transposed ? 2 : 1).reduce((a, b) => a * b, 1);
    const cPerGroup = wShape[0] / group;
    const channelOf = (i: number) => (transposed ? Math.floor(Math.floor(i / (mg * inner)) / cPerGroup) * mg + (Math.floor(i / inner) % mg) : Math.floor(i / inner));
    if (gamma.length !== m) continue;
    const w = tensorData(wInit) as Float32Array;
    const b = convBiasInit ? (tensorData(convBiasInit) as Float32Array) : new Float32Array(m);
    const w2 = new Float32Array(w.length);
    const b2 = new Float32Array(m);
    const k = Float64Array.from(gamma, (gm, c) => gm / Math.sqrt(variance[c] + eps));
    for (let i = 0; i < w.length; i++) w2[i] = w[i] * k[channelOf(i)];
    for (let c = 0; c < m; c++) b2[c] = (b[c] - mean[c]) * k[c] + beta[c];
    // Fresh names: the original weight may be shared with another Conv.
    const wName = g.addInit(makeTensor(g.fresh(`${conv.input![1]}_bnfold`), wShape, w2));
    const bName = g.addInit(makeTensor(g.fresh(`${bn.output![0]}_bias`), [m], b2));
    conv.input = [conv.input![0], wName, bName];
    conv.output = [bn.output![0]];
    g.graph.node = g.graph.node!.filter((n) => n !== bn);
    folded++;
  }
  if (folded || biasAdds) g.pruneUnusedInits();
  return folded;
}

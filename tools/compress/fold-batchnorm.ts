// BatchNormalization after a Conv is an affine map per output channel, so it folds into the
// Conv's weights and bias: one op fewer at run time, and the quantizer sees the weights the
// device will actually multiply by.
import { attr, DataType, dims, makeTensor, tensorData } from '../../agent/onnx/model.js';
import type { GraphIndex } from './graph.js';

export function foldBatchNorms(g: GraphIndex): number {
  let folded = 0;
  for (const bn of [...g.graph.node!]) {
    if (bn.opType !== 'BatchNormalization' || (bn.output ?? []).filter(Boolean).length !== 1) continue;
    const [x, scaleN, biasN, meanN, varN] = bn.input!;
    const conv = g.producer(x);
    if (!conv || conv.opType !== 'Conv' || g.consumers(x).length !== 1 || g.isGraphOutput(x)) continue;
    const wInit = g.inits.get(conv.input![1]);
    const params = [scaleN, biasN, meanN, varN].map((n) => g.inits.get(n));
    if (!wInit || wInit.dataType !== DataType.FLOAT || params.some((p) => !p || p.dataType !== DataType.FLOAT)) continue;
    const convBiasInit = conv.input![2] ? g.inits.get(conv.input![2]) : undefined;
    if (conv.input![2] && !convBiasInit) continue;

    const eps = (attr(bn, 'epsilon') as number | undefined) ?? 1e-5;
    const [gamma, beta, mean, variance] = params.map((p) => tensorData(p!) as Float32Array);
    const wShape = dims(wInit);
    const m = wShape[0];
    const per = wShape.slice(1).reduce((a, b) => a * b, 1);
    const w = tensorData(wInit) as Float32Array;
    const b = convBiasInit ? (tensorData(convBiasInit) as Float32Array) : new Float32Array(m);
    const w2 = new Float32Array(w.length);
    const b2 = new Float32Array(m);
    for (let c = 0; c < m; c++) {
      const k = gamma[c] / Math.sqrt(variance[c] + eps);
      for (let i = 0; i < per; i++) w2[c * per + i] = w[c * per + i] * k;
      b2[c] = (b[c] - mean[c]) * k + beta[c];
    }
    // Fresh names: the original weight may be shared with another Conv.
    const wName = g.addInit(makeTensor(g.fresh(`${conv.input![1]}_bnfold`), wShape, w2));
    const bName = g.addInit(makeTensor(g.fresh(`${bn.output![0]}_bias`), [m], b2));
    conv.input = [conv.input![0], wName, bName];
    conv.output = [bn.output![0]];
    g.graph.node = g.graph.node!.filter((n) => n !== bn);
    folded++;
  }
  if (folded) g.pruneUnusedInits();
  return folded;
}

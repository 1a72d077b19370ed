// Dynamic quantization for MatMul-heavy models: weights int8 now, activations quantized at run
// time per batch (DynamicQuantizeLinear), products in MatMulInteger. Needs no calibration set.
import { attr, DataType, dims, makeNode, makeTensor, tensorData, type NodeProto } from '../../agent/onnx/model.js';
import type { GraphIndex } from './graph.js';
import { quantizeWeights, transpose2d, type WeightBits } from './quant-math.js';

export function applyDynamic(g: GraphIndex, perChannel: boolean, weightBits: WeightBits = 8): { quantized: Record<string, number> } {
  const body: NodeProto[] = [];
  const quantized: Record<string, number> = {};
  for (const n of g.graph.node!) {
    const [a, w, b] = n.input ?? [];
    const wt = w ? g.inits.get(w) : undefined;
    const isMatMul = n.opType === 'MatMul' || (n.opType === 'Gemm' && !attr(n, 'transA'));
    if (!isMatMul || !a || g.inits.has(a) || !wt || wt.dataType !== DataType.FLOAT || dims(wt).length !== 2 || (n.domain && n.domain !== 'ai.onnx')) {
      body.push(n);
      continue;
    }
    const biasT = n.opType === 'Gemm' && b ? g.inits.get(b) : undefined;
    if (n.opType === 'Gemm' && b && (!biasT || biasT.dataType !== DataType.FLOAT)) {
      body.push(n);
      continue;
    }
    let shape = dims(wt);
    let wv = tensorData(wt) as Float32Array;
    if (n.opType === 'Gemm' && attr(n, 'transB')) {
      wv = transpose2d(wv, shape[0], shape[1]);
      shape = [shape[1], shape[0]];
    }
    const alpha = n.opType === 'Gemm' ? ((attr(n, 'alpha') as number | undefined) ?? 1) : 1;
    const beta = n.opType === 'Gemm' ? ((attr(n, 'beta') as number | undefined) ?? 1) : 1;
    const qw = quantizeWeights(wv, shape, perChannel ? 1 : null, weightBits);
    const out = n.output![0];
    const aq = g.fresh(`${a}_quantized`);
    const as = g.fresh(`${a}_scale`);
    const az = g.fresh(`${a}_zero_point`);
    const wq = g.addInit(makeTensor(g.fresh(`${w}_quantized`), shape, qw.q));
    const ws = g.addInit(makeTensor(g.fresh(`${w}_scale`), perChannel ? [qw.scales.length] : [], qw.scales.map((s) => s * alpha)));
    const wz = g.addInit(makeTensor(g.fresh(`${w}_zero_point`), [], new Int8Array(1)));
    const acc = g.fresh(`${out}_int32`);
    const accF = g.fresh(`${out}_int32_float`);
    const scale = g.fresh(`${out}_scale`);
    body.push(makeNode('DynamicQuantizeLinear', [a], [aq, as, az]));
    body.push(makeNode('MatMulInteger', [aq, wq, az, wz], [acc]));
    body.push(makeNode('Cast', [acc], [accF], { to: DataType.FLOAT }));
    body.push(makeNode('Mul', [as, ws], [scale]));
    if (biasT) {
      const scaled = g.fresh(`${out}_scaled`);
      body.push(makeNode('Mul', [accF, scale], [scaled]));
      const bv = tensorData(biasT) as Float32Array;
      const bName = g.addInit(makeTensor(g.fresh(`${b}_beta`), dims(biasT), beta === 1 ? bv : bv.map((v) => v * beta)));
      body.push(makeNode('Add', [scaled, bName], [out]));
    } else {
      body.push(makeNode('Mul', [accF, scale], [out]));
    }
    quantized[n.opType!] = (quantized[n.opType!] ?? 0) + 1;
  }
  g.graph.node = body;
  g.graph.valueInfo = [];
  g.pruneUnusedInits();
  return { quantized };
}

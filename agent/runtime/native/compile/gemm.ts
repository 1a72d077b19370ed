// The gemm family: Gemm, MatMul and QLinearMatMul become one 'gemm' op with one weight row per
// output, the requantization and any fused Relu/Clip clamp folded in.
import { attr } from '../../../onnx/model.js';
import type { Clamp } from '../plan.js';
import { quantizedClamp, requantMultipliers } from '../quant.js';
import type { Compiler } from './compiler.js';
import { toPlain } from './layout.js';
import { bias, centredWeights } from './weights.js';
import { numel, qdtype, type Pending, type QTensor } from './values.js';

export function visitGemm(c: Compiler): void {
  const n = c.node;
  if (n.opType === 'MatMul') {
    return c.pending({ kind: 'gemm', node: n, x: c.deq(0), w: c.weightDeq(1), transB: false, lo: -Infinity, hi: Infinity });
  }
  if ((attr(n, 'transA') ?? 0) !== 0) throw c.bad('transA is not supported');
  if ((attr(n, 'alpha') ?? 1) !== 1 || (attr(n, 'beta') ?? 1) !== 1) throw c.bad('alpha and beta must be 1');
  c.pending({ kind: 'gemm', node: n, x: c.deq(0), w: c.weightDeq(1), transB: attr(n, 'transB') === 1, b: c.input(2), lo: -Infinity, hi: Infinity });
}

export function qlinearMatMul(c: Compiler): void {
  const x = c.qdeq(0, 1, 2);
  const w = c.constDeq(c.constValue(3, 'QLinearMatMul B'), 4, 5, 1);
  const { scale, zp, signed } = c.qparams(6, 7);
  c.set({ k: 'q', q: c.emit({ kind: 'gemm', node: c.node, x, w, transB: false, lo: -Infinity, hi: Infinity }, scale, zp, signed) });
}

export function emitGemm(c: Compiler, p: Extract<Pending, { kind: 'gemm' }>, scale: number, zp: number, signed: boolean): QTensor {
  let x = p.x.q;
  if (p.w.shape.length !== 2) throw c.bad(`B must be a 2D constant, got [${p.w.shape}]`);
  if (x.layout === 'nhwc') x = toPlain(c, x);
  const K = x.shape[x.shape.length - 1];
  const [r, cols] = p.w.shape;
  const N = p.transB ? r : cols;
  if ((p.transB ? cols : r) !== K) throw c.bad(`B [${p.w.shape}] does not fit an input with ${K} features`);
  const outAxis = p.transB ? 0 : 1;
  if (p.w.scales.length !== 1 && p.w.axis !== outAxis) throw c.bad('per-channel weight scales must be along the output axis');
  const centred = centredWeights(c, p.w, (i) => (p.transB ? Math.floor(i / cols) : i % cols));
  // Rows per output; a flattened NHWC input takes its features in HWC order, so permute K.
  const rows = new Int8Array(N * K);
  const hwc = x.layout === 'flat-hwc' ? x.chw! : undefined;
  for (let nOut = 0; nOut < N; nOut++) {
    for (let k = 0; k < K; k++) {
      let src = k;
      if (hwc) {
        const [C, H, W] = hwc;
        const ch = k % C; const hw = Math.floor(k / C);
        src = ch * H * W + hw;
        void W;
      }
      rows[nOut * K + k] = p.transB ? centred[nOut * K + src] : centred[src * N + nOut];
    }
  }
  const M = numel(x.shape) / K;
  // W8A16: the same op on u16 tensors, the input seen as [M, K] (the engine runs it as a 1x1 conv).
  const bits = x.bits ?? 8;
  const input = bits === 16 ? c.tensor('u16', [M, K], x.tensor) : x.tensor;
  const out = c.tensor(qdtype(x), [M, N]);
  c.ops.push({
    op: 'gemm', input, output: out,
    weights: c.weight(rows),
    bias: c.weight(bias(c, p.b, N, p.x.scale, p.w.scales)),
    multipliers: c.weight(requantMultipliers(p.x.scale, p.w.scales, scale, N)),
    inputZeroPoint: p.x.zp, outputZeroPoint: zp, clamp: quantizedClamp(p.lo, p.hi, scale, zp, bits) as Clamp,
  });
  return { tensor: out, shape: [...x.shape.slice(0, -1), N], layout: 'plain', signed, ...(x.bits ? { bits: x.bits } : {}) };
}

// The pool family: MaxPool, AveragePool, GlobalAveragePool and their QLinear forms, on NHWC maps.
// Max pooling commutes with quantization, so it runs on the input's scale and a change of scale
// (if any) follows as a table; average pooling requantizes inside the kernel.
import { attr } from '../../../onnx/model.js';
import type { Compiler } from './compiler.js';
import { padsOf } from './conv.js';
import { toNhwc } from './layout.js';
import { requantize } from './lut.js';
import { ints, kindName, qdtype, type Deq, type Pending, type QTensor } from './values.js';

export function visitPool(c: Compiler): void {
  const x = c.input(0)!;
  const global = c.node.opType === 'GlobalAveragePool';
  const kind = c.node.opType === 'MaxPool' ? 'maxpool' : 'avgpool';
  if (c.node.output!.length > 1 && c.node.output![1]) throw c.bad('the Indices output is not supported');
  if (x.k === 'dq') return c.pending({ kind, node: c.node, x: x.d, global });
  if (x.k === 'q' && kind === 'maxpool') return c.set({ k: 'q', q: pool(c, 'maxpool', toNhwc(c, x.q), false) });
  throw c.bad(`input must come from DequantizeLinear (got ${kindName(x)})`);
}

/** QLinearAveragePool, QLinearGlobalAveragePool. */
export function qlinearPool(c: Compiler): void {
  if (attr(c.node, 'channels_last') === 1) throw c.bad('channels_last=1 is not supported');
  const x = c.qdeq(0, 1, 2);
  const { scale, zp, signed } = c.qparams(3, 4);
  const global = c.node.opType === 'QLinearGlobalAveragePool';
  c.set({ k: 'q', q: c.emit({ kind: 'avgpool', node: c.node, x, global }, scale, zp, signed) });
}

export function emitPool(c: Compiler, p: Extract<Pending, { kind: 'maxpool' | 'avgpool' }>, scale: number, zp: number, signed: boolean): QTensor {
  if (p.kind === 'maxpool') {
    const out = pool(c, 'maxpool', toNhwc(c, p.x.q), p.global);
    return requantize(c, { q: out, scale: p.x.scale, zp: p.x.zp }, scale, zp, signed);
  }
  return { ...pool(c, 'avgpool', toNhwc(c, p.x.q), p.global, p.x, scale, zp), signed };
}

function pool(c: Compiler, kind: 'maxpool' | 'avgpool', x: QTensor, global: boolean, d?: Deq, scale = 0, zp = 0): QTensor {
  const n = c.node;
  const [N, C, H, W] = x.shape;
  const kernel = global ? [H, W] : ints(attr(n, 'kernel_shape'), []);
  if (kernel.length !== 2) throw c.bad('only 2D pooling is supported');
  const strides = global ? [1, 1] : ints(attr(n, 'strides'), [1, 1]);
  const dil = global ? [1, 1] : ints(attr(n, 'dilations'), [1, 1]);
  const pads = global ? [0, 0, 0, 0] as [number, number, number, number] : padsOf(c, H, W, kernel, strides, dil);
  const ceil = !global && attr(n, 'ceil_mode') === 1;
  const size = (len: number, i: number): number => {
    const span = len + pads[i] + pads[i + 2] - dil[i] * (kernel[i] - 1) - 1;
    let o = (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
    // ONNX: with ceil_mode the last window must start inside the input or left padding.
    if (ceil && (o - 1) * strides[i] >= len + pads[i]) o--;
    return o;
  };
  const Ho = size(H, 0); const Wo = size(W, 1);
  if (Ho < 1 || Wo < 1) throw c.bad('output would be empty');
  // The engine computes output sizes without ceil_mode, so fold ceil_mode into extra end padding.
  const padEnd = (len: number, o: number, i: number): number => Math.max(pads[i + 2], (o - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1 - len - pads[i]);
  const epads: [number, number, number, number] = [pads[0], pads[1], padEnd(H, Ho, 0), padEnd(W, Wo, 1)];
  const out = c.tensor(qdtype(x), [N, Ho, Wo, C]);
  if (kind === 'maxpool') {
    c.ops.push({ op: 'maxpool', input: x.tensor, output: out, kernel: [kernel[0], kernel[1]], strides: [strides[0], strides[1]], pads: epads, dilations: [dil[0], dil[1]] });
  } else {
    if (dil[0] !== 1 || dil[1] !== 1) throw c.bad('dilated average pooling is not supported');
    const countIncludePad = attr(n, 'count_include_pad') === 1;
    if (countIncludePad && (epads[2] !== pads[2] || epads[3] !== pads[3])) {
      throw c.bad('ceil_mode together with count_include_pad is not supported');
    }
    c.ops.push({
      op: 'avgpool', input: x.tensor, output: out, kernel: [kernel[0], kernel[1]], strides: [strides[0], strides[1]], pads: epads,
      countIncludePad, inputScale: d!.scale, inputZeroPoint: d!.zp, outputScale: scale, outputZeroPoint: zp,
    });
  }
  return { tensor: out, shape: [N, C, Ho, Wo], layout: 'nhwc', signed: x.signed, ...(x.bits ? { bits: x.bits } : {}) };
}

// The conv family: Conv and QLinearConv become one 'conv' op on an NHWC map, with the
// requantization and any fused Relu/Clip clamp folded in.
import { attr } from '../../../onnx/model.js';
import type { Clamp } from '../plan.js';
import { quantizedClamp, requantMultipliers } from '../quant.js';
import type { Compiler } from './compiler.js';
import { toNhwc } from './layout.js';
import { bias, centredWeights } from './weights.js';
import { ints, qdtype, type Pending, type QTensor } from './values.js';

export function visitConv(c: Compiler): void {
  c.pending({ kind: 'conv', node: c.node, x: c.deq(0), w: c.weightDeq(1), b: c.input(2), lo: -Infinity, hi: Infinity });
}

export function qlinearConv(c: Compiler): void {
  const x = c.qdeq(0, 1, 2);
  const w = c.constDeq(c.constValue(3, 'QLinearConv weights'), 4, 5, 0);
  const { scale, zp, signed } = c.qparams(6, 7);
  const p: Pending = { kind: 'conv', node: c.node, x, w, b: c.input(8), lo: -Infinity, hi: Infinity };
  c.set({ k: 'q', q: c.emit(p, scale, zp, signed) });
}

export function emitConv(c: Compiler, p: Extract<Pending, { kind: 'conv' }>, scale: number, zp: number, signed: boolean): QTensor {
  const n = p.node;
  const x = toNhwc(c, p.x.q);
  const [N, C, H, W] = x.shape;
  if (p.w.shape.length !== 4) throw c.bad('only 2D convolution (4D weights) is supported');
  const [M, Cg, KH, KW] = p.w.shape;
  const group = Number(attr(n, 'group') ?? 1);
  if (Cg * group !== C || M % group !== 0) throw c.bad(`weights [${p.w.shape}] with group ${group} do not fit ${C} input channels`);
  if (p.w.scales.length !== 1 && p.w.axis !== 0) throw c.bad('per-channel weight scales must be along the output channel axis');
  const kernel = ints(attr(n, 'kernel_shape'), [KH, KW]);
  if (kernel[0] !== KH || kernel[1] !== KW) throw c.bad('kernel_shape disagrees with the weights');
  const strides = ints(attr(n, 'strides'), [1, 1]);
  const dil = ints(attr(n, 'dilations'), [1, 1]);
  const pads = padsOf(c, H, W, [KH, KW], strides, dil);
  const Ho = Math.floor((H + pads[0] + pads[2] - dil[0] * (KH - 1) - 1) / strides[0]) + 1;
  const Wo = Math.floor((W + pads[1] + pads[3] - dil[1] * (KW - 1) - 1) / strides[1]) + 1;
  if (Ho < 1 || Wo < 1) throw c.bad('output would be empty');
  const per = Cg * KH * KW;
  const centred = centredWeights(c, p.w, (i) => Math.floor(i / per));
  // W8A16: the same op on u16 tensors (16-bit zero points and clamp).
  const bits = x.bits ?? 8;
  const out = c.tensor(qdtype(x), [N, Ho, Wo, M]);
  c.ops.push({
    op: 'conv', input: x.tensor, output: out,
    weights: c.weight(centred),
    bias: c.weight(bias(c, p.b, M, p.x.scale, p.w.scales)),
    multipliers: c.weight(requantMultipliers(p.x.scale, p.w.scales, scale, M)),
    inputZeroPoint: p.x.zp, outputZeroPoint: zp, clamp: quantizedClamp(p.lo, p.hi, scale, zp, bits) as Clamp,
    kernel: [KH, KW], strides: [strides[0], strides[1]], pads, dilations: [dil[0], dil[1]], group,
  });
  return { tensor: out, shape: [N, M, Ho, Wo], layout: 'nhwc', signed, ...(x.bits ? { bits: x.bits } : {}) };
}

/** Top, left, bottom, right padding of a sliding window (convolution and pooling), auto_pad resolved. */
export function padsOf(c: Compiler, H: number, W: number, k: number[], s: number[], d: number[]): [number, number, number, number] {
  const autoPad = String(attr(c.node, 'auto_pad') ?? 'NOTSET');
  if (autoPad === 'NOTSET') {
    const p = ints(attr(c.node, 'pads'), [0, 0, 0, 0]);
    return [p[0], p[1], p[2], p[3]];
  }
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  const padFor = (size: number, i: number): [number, number] => {
    const out = Math.ceil(size / s[i]);
    const total = Math.max(0, (out - 1) * s[i] + d[i] * (k[i] - 1) + 1 - size);
    const small = Math.floor(total / 2);
    return autoPad === 'SAME_LOWER' ? [total - small, small] : [small, total - small];
  };
  const [t, b] = padFor(H, 0); const [l, r] = padFor(W, 1);
  return [t, l, b, r];
}

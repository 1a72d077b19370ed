// The deconv family: ConvTranspose becomes one 'deconv' op on an NHWC map (int8 weights, exact
// int32 sums, the conv's per-channel requantization, any fused Relu/Clip clamp folded in).
// Runs as the int8 GEMM plus an integer scatter (native/src/kernels/deconv.h).
import { attr } from '../../../onnx/model.js';
import type { Clamp } from '../plan.js';
import { quantizedClamp, requantMultipliers } from '../quant.js';
import type { Compiler } from './compiler.js';
import { toNhwc } from './layout.js';
import { bias, centredWeights } from './weights.js';
import { ints, qdtype, type Pending, type QTensor } from './values.js';

export function visitConvTranspose(c: Compiler): void {
  c.pending({ kind: 'deconv', node: c.node, x: c.deq(0), w: c.weightDeq(1), b: c.input(2), lo: -Infinity, hi: Infinity });
}

export function emitDeconv(c: Compiler, p: Extract<Pending, { kind: 'deconv' }>, scale: number, zp: number, signed: boolean): QTensor {
  const n = p.node;
  const x = toNhwc(c, p.x.q);
  const [N, C, H, W] = x.shape;
  if (p.w.shape.length !== 4) throw c.bad('only 2D transposed convolution (4D weights) is supported');
  const [Cw, Mg, KH, KW] = p.w.shape;
  const group = Number(attr(n, 'group') ?? 1);
  if (Cw !== C || C % group !== 0) throw c.bad(`weights [${p.w.shape}] with group ${group} do not fit ${C} input channels`);
  const M = Mg * group;
  if (p.w.scales.length !== 1 && (p.w.axis !== 1 || group !== 1)) {
    throw c.bad('per-channel weight scales must be along axis 1 (the output channels) with group 1');
  }
  const kernel = ints(attr(n, 'kernel_shape'), [KH, KW]);
  if (kernel[0] !== KH || kernel[1] !== KW) throw c.bad('kernel_shape disagrees with the weights');
  const strides = ints(attr(n, 'strides'), [1, 1]);
  const dil = ints(attr(n, 'dilations'), [1, 1]);
  const opad = ints(attr(n, 'output_padding'), [0, 0]);
  const autoPad = String(attr(n, 'auto_pad') ?? 'NOTSET');
  let pads = ints(attr(n, 'pads'), [0, 0, 0, 0]);
  const outputShape = attr(n, 'output_shape') as number[] | undefined;
  const wanted = outputShape ? outputShape.slice(-2) : autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER' ? [H * strides[0], W * strides[1]] : undefined;
  if (autoPad === 'VALID') pads = [0, 0, 0, 0];
  if (wanted) {
    // ONNX: total padding from the wanted size; SAME_UPPER puts the smaller half first.
    const split = (i: number, size: number): [number, number] => {
      const total = strides[i] * (size - 1) + opad[i] + ([KH, KW][i] - 1) * dil[i] + 1 - wanted[i];
      if (total < 0) throw c.bad(`output_shape ${wanted} needs negative padding`);
      const half = Math.floor(total / 2);
      return autoPad === 'SAME_UPPER' ? [half, total - half] : [total - half, half];
    };
    const [t, b] = split(0, H); const [l, r] = split(1, W);
    pads = [t, l, b, r];
  }
  const Ho = (H - 1) * strides[0] - pads[0] - pads[2] + dil[0] * (KH - 1) + 1 + opad[0];
  const Wo = (W - 1) * strides[1] - pads[1] - pads[3] + dil[1] * (KW - 1) + 1 + opad[1];
  if (Ho < 1 || Wo < 1) throw c.bad('output would be empty');
  const per = KH * KW;
  const centred = centredWeights(c, p.w, (i) => Math.floor(i / per) % Mg);
  // W8A16: the same op on u16 tensors (16-bit zero points and clamp).
  const bits = x.bits ?? 8;
  const out = c.tensor(qdtype(x), [N, Ho, Wo, M]);
  c.ops.push({
    op: 'deconv', input: x.tensor, output: out,
    weights: c.weight(centred),
    bias: c.weight(bias(c, p.b, M, p.x.scale, p.w.scales)),
    multipliers: c.weight(requantMultipliers(p.x.scale, p.w.scales, scale, M)),
    inputZeroPoint: p.x.zp, outputZeroPoint: zp, clamp: quantizedClamp(p.lo, p.hi, scale, zp, bits) as Clamp,
    kernel: [KH, KW], strides: [strides[0], strides[1]], pads: [pads[0], pads[1], pads[2], pads[3]],
    dilations: [dil[0], dil[1]], outputPadding: [opad[0], opad[1]], group,
  });
  return { tensor: out, shape: [N, M, Ho, Wo], layout: 'nhwc', signed, ...(x.bits ? { bits: x.bits } : {}) };
}

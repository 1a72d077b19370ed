// Quantized 2-D convolution from JavaScript (NHWC activations, ONNX-layout weights).
import { kernelAddon, type NativeHandle, type QuantArray } from './addon.js';
import * as v from './validate.js';

export interface ConvGeometry {
  batch?: number;
  /** Input height, width, channels (the input is NHWC). */
  H: number;
  W: number;
  C: number;
  outChannels: number;
  kernel: [number, number];
  strides?: [number, number];
  /** ONNX order: [top, left, bottom, right]. */
  pads?: [number, number, number, number];
  dilations?: [number, number];
  groups?: number;
}

export class PackedConv {
  /** @internal */
  constructor(readonly handle: NativeHandle, readonly geometry: Required<ConvGeometry>, readonly outH: number, readonly outW: number) {}
}

function geometry(fn: string, g: ConvGeometry): Required<ConvGeometry> {
  const pair = (what: string, p: unknown, def: [number, number], min: number): [number, number] => {
    const x = p ?? def;
    if (!Array.isArray(x) || x.length !== 2) v.fail(fn, what, 'two integers', p);
    return [v.int(fn, `${what}[0]`, x[0], min), v.int(fn, `${what}[1]`, x[1], min)];
  };
  const pads = g.pads ?? [0, 0, 0, 0];
  if (!Array.isArray(pads) || pads.length !== 4) v.fail(fn, 'pads', 'four integers [top, left, bottom, right]', g.pads);
  const r: Required<ConvGeometry> = {
    batch: v.int(fn, 'batch', g.batch ?? 1, 1),
    H: v.int(fn, 'H', g.H, 1), W: v.int(fn, 'W', g.W, 1), C: v.int(fn, 'C', g.C, 1),
    outChannels: v.int(fn, 'outChannels', g.outChannels, 1),
    kernel: pair('kernel', g.kernel, [1, 1], 1),
    strides: pair('strides', g.strides, [1, 1], 1),
    pads: pads.map((p, i) => v.int(fn, `pads[${i}]`, p, 0)) as [number, number, number, number],
    dilations: pair('dilations', g.dilations, [1, 1], 1),
    groups: v.int(fn, 'groups', g.groups ?? 1, 1),
  };
  if (r.C % r.groups !== 0 || r.outChannels % r.groups !== 0) {
    v.fail(fn, 'groups', `a divisor of C (${r.C}) and outChannels (${r.outChannels})`, r.groups);
  }
  return r;
}

export function packConv(g: ConvGeometry, weights: Int8Array, zeroPoints?: number | number[] | Int32Array): PackedConv {
  const fn = 'packConv';
  const s = geometry(fn, g);
  if (!(weights instanceof Int8Array)) v.fail(fn, 'weights', 'an Int8Array', weights);
  const n = s.outChannels * (s.C / s.groups) * s.kernel[0] * s.kernel[1];
  v.length(fn, 'weights', weights, n, 'outChannels * C/groups * kernelH * kernelW, ONNX layout');
  const outH = Math.floor((s.H + s.pads[0] + s.pads[2] - (s.dilations[0] * (s.kernel[0] - 1) + 1)) / s.strides[0]) + 1;
  const outW = Math.floor((s.W + s.pads[1] + s.pads[3] - (s.dilations[1] * (s.kernel[1] - 1) + 1)) / s.strides[1]) + 1;
  if (outH < 1 || outW < 1) v.fail(fn, 'kernel', `no larger than the padded input (${s.H}x${s.W})`, s.kernel);
  const zps = zeroPoints === undefined ? null : v.zeroPoints(fn, 'zeroPoints', zeroPoints, s.outChannels, -128, 127);
  const shape = Int32Array.from([s.batch, s.H, s.W, s.C, s.outChannels, s.kernel[0], s.kernel[1], s.strides[0], s.strides[1],
    s.pads[0], s.pads[1], s.pads[2], s.pads[3], s.dilations[0], s.dilations[1], s.groups]);
  return new PackedConv(kernelAddon().kernelsPackConv(weights, shape, zps), s, outH, outW);
}

export interface ConvOptions extends v.Requant {
  /** NHWC input. */
  x: QuantArray;
  xZeroPoint?: number;
  bias?: Int32Array;
}

function prepare(fn: string, pc: PackedConv, o: ConvOptions) {
  if (!(pc instanceof PackedConv)) v.fail(fn, 'conv', 'a PackedConv from packConv()', pc);
  const s = pc.geometry;
  const x = v.quantArray(fn, 'x', o.x);
  v.length(fn, 'x', x, s.batch * s.H * s.W * s.C, 'batch * H * W * C (NHWC)');
  const xzp = v.zeroPoint(fn, 'xZeroPoint', o.xZeroPoint ?? 0, v.typeOf(x));
  const b = v.bias(fn, o.bias, s.outChannels);
  const r = v.requant(fn, o, s.outChannels);
  return { x, xzp, b, r, out: r.out(s.batch * pc.outH * pc.outW * s.outChannels) };
}

/** NHWC output [batch][outH][outW][outChannels]. */
export function conv(pc: PackedConv, o: ConvOptions): Uint8Array | Int8Array | Int32Array {
  const p = prepare('conv', pc, o);
  kernelAddon().kernelsConv(pc.handle, p.x, p.xzp, p.b, p.out, p.r.scales, p.r.zp, p.r.lo, p.r.hi, false);
  return p.out;
}

export async function convAsync(pc: PackedConv, o: ConvOptions): Promise<Uint8Array | Int8Array | Int32Array> {
  const p = prepare('convAsync', pc, o);
  await kernelAddon().kernelsConv(pc.handle, p.x, p.xzp, p.b, p.out, p.r.scales, p.r.zp, p.r.lo, p.r.hi, true);
  return p.out;
}

// int8 GEMM from JavaScript: weights packed once (PackedGemm), then synchronous calls for
// small work and gemmAsync (Node-API async work, a Promise) so long ones leave the event loop free.
import { kernelAddon, type NativeHandle, type QuantArray } from './addon.js';
import * as v from './validate.js';

export class PackedGemm {
  /** @internal */
  constructor(readonly handle: NativeHandle, readonly K: number, readonly N: number) {}
}

export interface PackGemmOptions {
  /** int8 weights: K x N row-major (ONNX MatMul B), or N x K when nByK. */
  weights: Int8Array;
  K: number;
  N: number;
  nByK?: boolean;
  /** Weight zero points: one, or one per column (N). Default 0. */
  zeroPoints?: number | number[] | Int32Array;
}

export function packGemm(o: PackGemmOptions): PackedGemm {
  const fn = 'packGemm';
  if (!(o.weights instanceof Int8Array)) v.fail(fn, 'weights', 'an Int8Array', o.weights);
  const K = v.int(fn, 'K', o.K, 1, 33025);
  const N = v.int(fn, 'N', o.N, 1);
  v.length(fn, 'weights', o.weights, K * N, `K * N = ${K} * ${N}`);
  const zps = o.zeroPoints === undefined ? null : v.zeroPoints(fn, 'zeroPoints', o.zeroPoints, N, -128, 127);
  return new PackedGemm(kernelAddon().kernelsPackGemm(o.weights, K, N, o.nByK ?? false, zps), K, N);
}

export interface GemmOptions extends v.Requant {
  /** M x K activations (uint8, or int8). */
  a: QuantArray;
  M: number;
  aZeroPoint?: number;
  bias?: Int32Array;
}

function prepare(fn: string, w: PackedGemm, o: GemmOptions) {
  if (!(w instanceof PackedGemm)) v.fail(fn, 'weights', 'a PackedGemm from packGemm()', w);
  const a = v.quantArray(fn, 'a', o.a);
  const M = v.int(fn, 'M', o.M, 0);
  v.length(fn, 'a', a, M * w.K, `M * K = ${M} * ${w.K}`);
  const azp = v.zeroPoint(fn, 'aZeroPoint', o.aZeroPoint ?? 0, v.typeOf(a));
  const b = v.bias(fn, o.bias, w.N);
  const r = v.requant(fn, o, w.N);
  const out = r.out(M * w.N);
  return { a, M, azp, b, r, out };
}

/** C = requant((A - aZeroPoint) x (B - bZeroPoint) + bias), M x N row-major. */
export function gemm(w: PackedGemm, o: GemmOptions): Uint8Array | Int8Array | Int32Array {
  const p = prepare('gemm', w, o);
  kernelAddon().kernelsGemm(w.handle, p.a, p.M, p.azp, p.b, p.out, p.r.scales, p.r.zp, p.r.lo, p.r.hi, false);
  return p.out;
}

export async function gemmAsync(w: PackedGemm, o: GemmOptions): Promise<Uint8Array | Int8Array | Int32Array> {
  const p = prepare('gemmAsync', w, o);
  await kernelAddon().kernelsGemm(w.handle, p.a, p.M, p.azp, p.b, p.out, p.r.scales, p.r.zp, p.r.lo, p.r.hi, true);
  return p.out;
}

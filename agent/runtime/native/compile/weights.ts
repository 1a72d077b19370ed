// Weights and biases as the conv and gemm kernels take them: int8 with the zero point already
// subtracted, and the bias as int32 in the accumulator's scale.
import { DataType } from '../../../onnx/model.js';
import { roundHalfEven } from '../quant.js';
import type { Compiler } from './compiler.js';
import type { ConstDeq, Value } from './values.js';

/** Weights with their zero point subtracted, as int8 (refused when that leaves the int8 range). */
export function centredWeights(c: Compiler, w: ConstDeq, channelOf: (i: number) => number): Int8Array {
  if (w.dtype !== DataType.INT8 && w.dtype !== DataType.UINT8) throw c.bad('weights must be int8 or uint8');
  const out = new Int8Array(w.data.length);
  for (let i = 0; i < out.length; i++) {
    const z = w.zps.length === 1 ? w.zps[0] : w.zps[channelOf(i)];
    const v = Number(w.data[i]) - z;
    if (v < -128 || v > 127) throw c.bad(`weight minus zero point (${v}) leaves the int8 range; asymmetric weights are not supported`);
    out[i] = v;
  }
  return out;
}

/** Bias as int32 in the accumulator's scale (input_scale * weight_scale[c]). */
export function bias(c: Compiler, b: Value | undefined, channels: number, inScale: number, wScales: number[]): Int32Array {
  const out = new Int32Array(channels);
  if (!b) return out;
  const accScale = (ch: number): number => Math.fround(Math.fround(inScale) * Math.fround(wScales.length === 1 ? wScales[0] : wScales[ch]));
  if (b.k === 'cdq' && b.c.dtype === DataType.INT32) {
    if (b.c.data.length !== channels) throw c.bad(`bias has ${b.c.data.length} values for ${channels} outputs`);
    for (let ch = 0; ch < channels; ch++) {
      const bs = b.c.scales.length === 1 ? b.c.scales[0] : b.c.scales[ch];
      const bz = b.c.zps.length === 1 ? b.c.zps[0] : b.c.zps[ch];
      const v = Number(b.c.data[ch]) - bz;
      const ratio = bs / accScale(ch);
      out[ch] = Math.abs(ratio - 1) < 1e-5 ? v : roundHalfEven(v * ratio);
    }
    return out;
  }
  if (b.k === 'const' && (b.c.dtype === DataType.INT32 || b.c.dtype === DataType.FLOAT)) {
    if (b.c.data.length !== channels) throw c.bad(`bias has ${b.c.data.length} values for ${channels} outputs`);
    for (let ch = 0; ch < channels; ch++) {
      const v = Number(b.c.data[ch]);
      out[ch] = b.c.dtype === DataType.INT32 ? v : roundHalfEven(v / accScale(ch));
    }
    return out;
  }
  throw c.bad('bias must be an int32 initializer (optionally dequantized) or a float initializer');
}

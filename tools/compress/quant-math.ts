// The arithmetic of quantization: int8 symmetric weights (per output channel or per tensor),
// uint8 (or uint16) asymmetric activations, int32 biases at scale input_scale * weight_scale.
import { ToolErrors } from './errors.js';
import type { Range } from './calibrate.js';

export interface ActivationParams { scale: number; zeroPoint: number }

/** Bits an activation is stored in: 8 (uint8) or 16 (uint16, "W8A16"). */
export type ActivationBits = 8 | 16;

/**
 * uint8 (or uint16) asymmetric parameters for a range; the range always contains 0 so zero is
 * exact.
 */
export function activationParams(name: string, r: Range, bits: ActivationBits = 8): ActivationParams {
  if (!Number.isFinite(r.min) || !Number.isFinite(r.max)) {
    throw ToolErrors.CALIB_MISMATCH(`tensor ${name} had no finite values during calibration (range [${r.min}, ${r.max}]); check the calibration data`);
  }
  const top = bits === 16 ? 65535 : 255;
  const lo = Math.min(0, r.min);
  const hi = Math.max(0, r.max);
  const scale = (hi - lo) / top || 1;
  const zeroPoint = Math.min(top, Math.max(0, Math.round(-lo / scale)));
  return { scale: Math.fround(scale), zeroPoint };
}

/**
 * A calibrated range widened `factor` times about zero. With 16-bit activations the steps are
 * 256 times finer than with 8, so a value beyond what calibration saw costs more (it is clipped)
 * than coarser steps do: PP-OCRv4 rec measured 15.8 dB against fp32 at the calibrated ranges and
 * 24.2 dB with them doubled (ONNX Runtime, 24 held-out lines).
 */
export function widenRange(r: Range, factor: number): Range {
  return { min: Math.min(0, r.min) * factor, max: Math.max(0, r.max) * factor };
}

export interface QuantizedWeights {
  q: Int8Array;
  /** One scale per channel along `axis`, or a single one (axis null). */
  scales: Float32Array;
  axis: number | null;
}

/** Bits a quantized weight may use: 8 (int8) or 7 (values in [-63, 63], see weightLimit). */
export type WeightBits = 7 | 8;
/**
 * The largest |q| of symmetric weights with `bits` bits: 127, or 63 for 7 bits. 7-bit weights
 * let x86 CPUs without VNNI use vpmaddubsw exactly (u8 x s7 pairs cannot saturate int16), which
 * the native engine's AVX2 kernel does for every layer whose weights fit.
 */
export function weightLimit(bits: WeightBits): number {
  return bits === 7 ? 63 : 127;
}

/** Largest |weight| of a channel treated as all zeros (quantizeWeights). */
export const kDeadWeight = 1e-30;

/** int8 symmetric in [-limit, limit] (limit 127, or 63 with 7 bits): zero point 0, scale = max|w| / limit per channel. */
export function quantizeWeights(w: Float32Array, shape: number[], axis: number | null, bits: WeightBits = 8): QuantizedWeights {
  const limit = weightLimit(bits);
  const channels = axis === null ? 1 : shape[axis];
  const inner = axis === null ? w.length : shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const chan = (i: number) => (axis === null ? 0 : Math.floor(i / inner) % channels);
  const amax = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) {
    const c = chan(i);
    const a = Math.abs(w[i]);
    if (a > amax[c]) amax[c] = a;
  }
  const scales = new Float32Array(channels);
  // A channel whose weights are all below 1e-30 is a dead one (PP-OCRv4 rec has channels at
  // 1e-40): its weights become 0 at scale 1. A scale near float32's smallest would make
  // input_scale * weight_scale underflow to 0 and its bias (stored at that scale) overflow int32.
  for (let c = 0; c < channels; c++) scales[c] = amax[c] > kDeadWeight ? amax[c] / limit : 1;
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-limit, Math.min(limit, Math.round(w[i] / scales[chan(i)])));
  return { q, scales, axis };
}

/** int32 bias at scale inputScale * weightScale[c] (the accumulator's scale). */
export function quantizeBias(b: Float32Array, inputScale: number, weightScales: Float32Array): { q: Int32Array; scales: Float32Array } {
  const scales = new Float32Array(b.length);
  const q = new Int32Array(b.length);
  for (let c = 0; c < b.length; c++) {
    const s = inputScale * weightScales[weightScales.length === 1 ? 0 : c];
    scales[c] = s;
    q[c] = Math.max(-2147483647, Math.min(2147483647, Math.round(b[c] / s)));
  }
  return { q, scales };
}

export function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

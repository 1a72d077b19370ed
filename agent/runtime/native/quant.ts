// Quantization arithmetic done once at load: requantization multipliers, bias in the
// accumulator's scale, u8 lookup tables for unary activations, clamps for fused ReLU/Clip.
// Float32 rounding follows ONNX Runtime (multipliers are computed in float32, values round
// half to even) so the engine and ORT agree to within one quantization step.

const f32 = Math.fround;

/** Round half to even, like std::nearbyint in the default rounding mode. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export const clampU8 = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/** input_scale * weight_scale[c] / output_scale in float32, per output channel. */
export function requantMultipliers(inputScale: number, weightScales: number[], outputScale: number, channels: number): Float32Array {
  const out = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const ws = weightScales.length === 1 ? weightScales[0] : weightScales[c];
    out[c] = f32(f32(f32(inputScale) * f32(ws)) / f32(outputScale));
  }
  return out;
}

/**
 * A float range [lo, hi] clamp on the real output, moved into the u8 (or u16) domain of an output
 * with (scale, zeroPoint). Quantization is monotone, so clamp-then-quantize equals quantize-then-clamp.
 */
export function quantizedClamp(lo: number, hi: number, scale: number, zeroPoint: number, bits: 8 | 16 = 8): [number, number] {
  const top = bits === 16 ? 65535 : 255;
  const clamp = (v: number) => (v < 0 ? 0 : v > top ? top : v);
  const qlo = lo === -Infinity ? 0 : clamp(roundHalfEven(lo / scale) + zeroPoint);
  const qhi = hi === Infinity ? top : clamp(roundHalfEven(hi / scale) + zeroPoint);
  return [qlo, Math.max(qlo, qhi)];
}

/** A 256-entry table mapping an input u8 (scale, zp) through fn to an output u8 (scale, zp). */
export function unaryTable(fn: (x: number) => number, inScale: number, inZp: number, outScale: number, outZp: number): Uint8Array {
  return fillTable(new Uint8Array(256), fn, inScale, inZp, outScale, outZp);
}

/** The same for u16 activations (W8A16): 65536 entries. */
export function unaryTable16(fn: (x: number) => number, inScale: number, inZp: number, outScale: number, outZp: number): Uint16Array {
  return fillTable(new Uint16Array(65536), fn, inScale, inZp, outScale, outZp);
}

/** DequantizeLinear, fn and QuantizeLinear in float32 for every input value q. */
function fillTable<T extends Uint8Array | Uint16Array>(t: T, fn: (x: number) => number, inScale: number, inZp: number, outScale: number, outZp: number): T {
  const top = t.length - 1;
  for (let q = 0; q <= top; q++) {
    const x = f32((q - inZp) * inScale);
    const y = f32(fn(x));
    const v = roundHalfEven(f32(y / outScale)) + outZp;
    t[q] = v < 0 ? 0 : v > top ? top : v; // NaN stores 0
  }
  return t;
}

/** The byte flip between int8 storage and the engine's u8 storage (zero point shifted by 128). */
export function signFlipTable(): Uint8Array {
  const t = new Uint8Array(256);
  for (let q = 0; q < 256; q++) t[q] = q ^ 0x80;
  return t;
}

export const activations: Record<string, (node: { alpha?: number; beta?: number }) => (x: number) => number> = {
  Relu: () => (x) => (x > 0 ? x : 0),
  Sigmoid: () => (x) => 1 / (1 + Math.exp(-x)),
  Tanh: () => (x) => Math.tanh(x),
  LeakyRelu: ({ alpha = 0.01 }) => (x) => (x >= 0 ? x : alpha * x),
  HardSigmoid: ({ alpha = 0.2, beta = 0.5 }) => (x) => Math.max(0, Math.min(1, alpha * x + beta)),
  HardSwish: () => (x) => x * Math.max(0, Math.min(1, x / 6 + 0.5)),
};

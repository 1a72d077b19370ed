// Argument checks shared by the kernel wrappers. Every message names the function, the
// argument, what was expected and the value received.
import { Errors } from '../errors.js';
import type { QuantArray } from './addon.js';

export type QuantType = 'uint8' | 'int8';

export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as { length: number }).length})`;
  if (Array.isArray(v)) return `[${v.slice(0, 8).map(show).join(', ')}${v.length > 8 ? ', ...' : ''}]`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

export function fail(fn: string, what: string, expected: string, got: unknown): never {
  throw Errors.KERNEL_ARGUMENT(fn, `${what} must be ${expected}, got ${show(got)}`);
}

export function int(fn: string, what: string, v: unknown, min: number, max = 2 ** 31 - 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(fn, what, `an integer in [${min}, ${max}]`, v);
  }
  return v;
}

export function scale(fn: string, what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(fn, what, 'a finite number > 0', v);
  return v;
}

export function quantArray(fn: string, what: string, v: unknown): QuantArray {
  if (!(v instanceof Uint8Array) && !(v instanceof Int8Array)) fail(fn, what, 'a Uint8Array or Int8Array', v);
  return v;
}

export const typeOf = (a: QuantArray): QuantType => (a instanceof Uint8Array ? 'uint8' : 'int8');
export const qmin = (t: QuantType): number => (t === 'uint8' ? 0 : -128);
export const qmax = (t: QuantType): number => (t === 'uint8' ? 255 : 127);

export function zeroPoint(fn: string, what: string, v: unknown, t: QuantType): number {
  return int(fn, `${what} (${t})`, v, qmin(t), qmax(t));
}

export function length(fn: string, what: string, a: { length: number }, want: number, how: string): void {
  if (a.length !== want) fail(fn, `${what}.length`, `${want} (${how})`, a.length);
}

/** Scales as a Float32Array of 1 or `channels` finite positive values. */
export function scales(fn: string, what: string, v: unknown, channels: number): Float32Array {
  const arr = typeof v === 'number' ? [v] : v instanceof Float32Array || Array.isArray(v) ? Array.from(v as ArrayLike<number>) : undefined;
  if (!arr || (arr.length !== 1 && arr.length !== channels)) fail(fn, what, `a number or 1 or ${channels} numbers`, v);
  arr.forEach((s, i) => scale(fn, `${what}[${i}]`, s));
  return Float32Array.from(arr);
}

/** Integer zero points as an Int32Array of 1 or `channels` values in [lo, hi]. */
export function zeroPoints(fn: string, what: string, v: unknown, channels: number, lo: number, hi: number): Int32Array {
  const arr = typeof v === 'number' ? [v] : ArrayBuffer.isView(v) || Array.isArray(v) ? Array.from(v as ArrayLike<number>) : undefined;
  if (!arr || (arr.length !== 1 && arr.length !== channels)) fail(fn, what, `a number or 1 or ${channels} integers`, v);
  arr.forEach((z, i) => int(fn, `${what}[${i}]`, z, lo, hi));
  return Int32Array.from(arr);
}

export interface Requant {
  /** Output element type; 'int32' returns the raw accumulators (MatMulInteger/ConvInteger). */
  outType?: QuantType | 'int32';
  /** Per-tensor or per-channel multipliers: input_scale * weight_scale / output_scale. */
  multipliers?: number | number[] | Float32Array;
  outZeroPoint?: number;
  /** Quantized clamp bounds for fused ReLU/Clip; default the output type's range. */
  clampMin?: number;
  clampMax?: number;
}

export interface ResolvedRequant {
  out: (count: number) => Uint8Array | Int8Array | Int32Array;
  scales: Float32Array | null;
  zp: number;
  lo: number;
  hi: number;
}

export function requant(fn: string, r: Requant, channels: number): ResolvedRequant {
  const outType = r.outType ?? 'uint8';
  if (outType === 'int32') return { out: (n) => new Int32Array(n), scales: null, zp: 0, lo: 0, hi: 0 };
  if (outType !== 'uint8' && outType !== 'int8') fail(fn, 'outType', '"uint8", "int8" or "int32"', outType);
  const zp = zeroPoint(fn, 'outZeroPoint', r.outZeroPoint ?? 0, outType);
  const lo = int(fn, 'clampMin', r.clampMin ?? qmin(outType), qmin(outType), qmax(outType));
  const hi = int(fn, 'clampMax', r.clampMax ?? qmax(outType), lo, qmax(outType));
  if (r.multipliers === undefined) fail(fn, 'multipliers', 'given for a quantized output', undefined);
  return {
    out: (n) => (outType === 'uint8' ? new Uint8Array(n) : new Int8Array(n)),
    scales: scales(fn, 'multipliers', r.multipliers, channels),
    zp, lo, hi,
  };
}

export function bias(fn: string, v: unknown, n: number): Int32Array | null {
  if (v === undefined || v === null) return null;
  if (!(v instanceof Int32Array)) fail(fn, 'bias', 'an Int32Array', v);
  length(fn, 'bias', v, n, 'one per output channel');
  return v;
}

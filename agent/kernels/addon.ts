// The raw kernel functions of the native addon (native/binding/kernels.cc). Callers use the
// validating wrappers in this folder, never these directly.
import { loadNative } from '../native.js';

export type QuantArray = Uint8Array | Int8Array;
export type OutArray = Uint8Array | Int8Array | Int32Array;
declare const packedBrand: unique symbol;
/** An opaque native handle to packed weights (freed with the JS object). */
export type NativeHandle = { readonly [packedBrand]: true };

export interface KernelsInfo {
  /** The variant running now: scalar, avx2, avx512vnni, avxvnni, neon or dotprod. */
  variant: string;
  supported: string[];
  cpu: string;
  threads: number;
  /** Why EDGE_KERNELS could not be honoured, or null. */
  forcedError: string | null;
}

export interface KernelAddon {
  kernelsInfo(): KernelsInfo;
  kernelsSetVariant(name: string): void;
  kernelsSetThreads(threads: number): number;
  kernelsPackGemm(weights: Int8Array, K: number, N: number, nByK: boolean, zeroPoints: Int32Array | null): NativeHandle;
  kernelsGemm(packed: NativeHandle, a: QuantArray, M: number, aZp: number, bias: Int32Array | null, out: OutArray,
    scales: Float32Array | null, yZp: number, clampMin: number, clampMax: number, async: boolean): Promise<void> | undefined;
  kernelsPackConv(weights: Int8Array, shape: Int32Array, zeroPoints: Int32Array | null): NativeHandle;
  kernelsConv(packed: NativeHandle, x: QuantArray, xZp: number, bias: Int32Array | null, out: OutArray,
    scales: Float32Array | null, yZp: number, clampMin: number, clampMax: number, async: boolean): Promise<void> | undefined;
  kernelsQuantizeLinear(x: Float32Array, y: QuantArray, scales: Float32Array, zps: Int32Array | null,
    outer: number, channels: number, inner: number): void;
  kernelsDequantizeLinear(x: QuantArray, y: Float32Array, scales: Float32Array, zps: Int32Array | null,
    outer: number, channels: number, inner: number): void;
  kernelsPool(kind: 'max' | 'avg', x: QuantArray, y: QuantArray, shape: Int32Array, xScale: number, xZp: number,
    yScale: number, yZp: number): void;
  kernelsEltwise(op: 'add' | 'mul', a: QuantArray, b: QuantArray, y: QuantArray, aScale: number, aZp: number,
    bScale: number, bZp: number, yScale: number, yZp: number, broadcast: number, channels: number,
    clampMin: number, clampMax: number): void;
  kernelsBuildLut(kind: number, p0: number, p1: number, inType: number, inScale: number, inZp: number,
    outType: number, outScale: number, outZp: number): Uint8Array;
  kernelsApplyLut(table: Uint8Array, x: QuantArray, y: QuantArray): void;
  /** GOPS of the variant's multiply-accumulate instruction in a loop (the peak int8 rate). */
  kernelsPeak(variant?: string, milliseconds?: number): number;
}

export function kernelAddon(): KernelAddon {
  return loadNative() as unknown as KernelAddon;
}

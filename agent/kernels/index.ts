// The int8 kernels from TypeScript: validated wrappers over the native addon. The native
// inference engine calls the C++ API directly; these serve tests, benchmarks and tools.
import { kernelAddon, type KernelsInfo } from './addon.js';
import * as v from './validate.js';

export type { KernelsInfo, QuantArray } from './addon.js';
export type { QuantType, Requant } from './validate.js';
export { PackedGemm, packGemm, gemm, gemmAsync, type GemmOptions, type PackGemmOptions } from './gemm.js';
export { PackedConv, packConv, conv, convAsync, type ConvGeometry, type ConvOptions } from './conv.js';
export {
  quantizeLinear, dequantizeLinear, maxPool, avgPool, globalAvgPool, qadd, qmul, activationLut, applyLut, ACTIVATIONS,
  type QuantParams, type PoolGeometry, type Rescale, type EltwiseOptions, type LutOptions, type ActivationName,
} from './ops.js';

export const KERNEL_VARIANTS = ['scalar', 'avx2', 'avx512vnni', 'avxvnni', 'neon', 'dotprod'] as const;

/** The variant in use (EDGE_KERNELS or the best for this CPU), the supported ones, threads. */
export function kernelsInfo(): KernelsInfo {
  return kernelAddon().kernelsInfo();
}

/** Switches variant for weights packed from now on (tests and benchmarks). */
export function setKernelVariant(name: string): void {
  if (!(KERNEL_VARIANTS as readonly string[]).includes(name)) v.fail('setKernelVariant', 'name', `one of ${KERNEL_VARIANTS.join(', ')}`, name);
  const info = kernelsInfo();
  if (!info.supported.includes(name)) v.fail('setKernelVariant', 'name', `supported by this CPU (${info.supported.join(', ')})`, name);
  kernelAddon().kernelsSetVariant(name);
}

/** Intra-op threads for the kernels (0 = the core count). Returns the count in use. */
export function setKernelThreads(threads: number): number {
  return kernelAddon().kernelsSetThreads(v.int('setKernelThreads', 'threads', threads, 0, 256));
}

// What this device's CPU offers and which int8 kernel variant runs, in one place for every
// report (/v1/status, the status page, the retained MQTT status): `cpuFeatures` is the list of
// features the addon found (cpuid, or the ARM hwcaps), `kernelVariant` the one variant in use
// (EDGE_KERNELS may force it). Both say 'unavailable' when the addon is not built.
import { loadNative } from './native.js';
import { kernelsInfo } from './kernels/index.js';

export function cpuFeatures(): string {
  try {
    return loadNative().cpuFeatures();
  } catch {
    return 'unavailable';
  }
}

export function kernelVariant(): string {
  try {
    return kernelsInfo().variant;
  } catch {
    return 'unavailable';
  }
}

#pragma once
#include <string>

#include "kernels/variants.h"

namespace edge::kernels {

// What the running CPU can do, detected once (cpuid on x86, getauxval on Linux ARM): one flag
// per kernel variant (variants.h), named as the variant.
//   avx2        AVX2 (+ FMA, which every AVX2 CPU has)
//   avx512vnni  AVX-512 F/BW/VL + VNNI
//   avxvnni     VEX-encoded VNNI (Alder Lake and later)
//   neon        ARMv8 Advanced SIMD
//   dotprod     ARMv8.2 SDOT/UDOT
// `scalar` is always true.
struct CpuFeatures {
#define EDGE_X(Enum, name, rank) bool name = false;
  EDGE_KERNEL_VARIANTS(EDGE_X)
#undef EDGE_X
};

const CpuFeatures& cpu_features();
// The flags that are set, comma-separated in variants.h order, scalar left out ("none" if empty).
std::string cpu_features_string();

}  // namespace edge::kernels

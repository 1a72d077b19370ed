#pragma once
#include <string>

namespace edge::kernels {

// What the running CPU can do, detected once (cpuid on x86, getauxval on Linux ARM).
struct CpuFeatures {
  bool avx2 = false;
  bool avx512_vnni = false;  // AVX-512 F/BW/VL + VNNI
  bool avx_vnni = false;     // VEX-encoded VNNI (Alder Lake and later)
  bool neon = false;
  bool dotprod = false;      // ARMv8.2 SDOT/UDOT
};

const CpuFeatures& cpu_features();
std::string cpu_features_string();

}  // namespace edge::kernels

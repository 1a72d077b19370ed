#include "kernels/cpu_features.h"

#include "kernels/dispatch.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace edge::kernels {
namespace {

CpuFeatures detect() {
  CpuFeatures f;
  f.scalar = true;
#if defined(__x86_64__) || defined(_M_X64)
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = (ecx >> 27) & 1;
  const bool fma = (ecx >> 12) & 1;  // the AVX2 files are built with -mfma (every AVX2 CPU has it)
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  const bool ymm_os = (xcr0 & 0x6) == 0x6;
  const bool zmm_os = (xcr0 & 0xe6) == 0xe6;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    f.avx2 = ymm_os && fma && ((ebx >> 5) & 1);
    const bool avx512f = (ebx >> 16) & 1, avx512bw = (ebx >> 30) & 1, avx512vl = (ebx >> 31) & 1;
    const bool vnni = (ecx >> 11) & 1;
    f.avx512vnni = zmm_os && avx512f && avx512bw && avx512vl && vnni;
  }
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) {
    f.avxvnni = ymm_os && f.avx2 && ((eax >> 4) & 1);
  }
#elif defined(__aarch64__) && defined(__linux__)
  unsigned long hw = getauxval(AT_HWCAP);
  f.neon = (hw & HWCAP_ASIMD) != 0;
#ifdef HWCAP_ASIMDDP
  f.dotprod = (hw & HWCAP_ASIMDDP) != 0;
#endif
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::string cpu_features_string() {
  const CpuFeatures& f = cpu_features();
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ",";
    s += name;
  };
#define EDGE_X(Enum, name, rank) \
  if (Variant::Enum != Variant::Scalar) add(f.name, #name);
  EDGE_KERNEL_VARIANTS(EDGE_X)
#undef EDGE_X
  return s.empty() ? "none" : s;
}

}  // namespace edge::kernels

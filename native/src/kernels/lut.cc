#include "kernels/lut.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/dispatch.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EDGE_LUT_VBMI 1
#endif

namespace edge::kernels {

#ifdef EDGE_LUT_VBMI
namespace {
// 64 lookups in two two-table byte permutes (VBMI vpermi2b: index bits 0-6 pick from 128
// entries) and a blend on each index's top bit. Lookups either way, so bit-identical.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void lut_vbmi(const uint8_t* t, const uint8_t* in, uint8_t* out, size_t n) {
  const __m512i t0 = _mm512_loadu_si512(t), t1 = _mm512_loadu_si512(t + 64);
  const __m512i t2 = _mm512_loadu_si512(t + 128), t3 = _mm512_loadu_si512(t + 192);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i x = _mm512_loadu_si512(in + i);
    const __m512i lo = _mm512_permutex2var_epi8(t0, x, t1);
    const __m512i hi = _mm512_permutex2var_epi8(t2, x, t3);
    _mm512_storeu_si512(out + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi));
  }
  if (i < n) {  // the tail (or a short row) under a byte mask
    const __mmask64 m = (uint64_t{1} << (n - i)) - 1;
    const __m512i x = _mm512_maskz_loadu_epi8(m, in + i);
    const __m512i lo = _mm512_permutex2var_epi8(t0, x, t1);
    const __m512i hi = _mm512_permutex2var_epi8(t2, x, t3);
    _mm512_mask_storeu_epi8(out + i, m, _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi));
  }
}

// Only under the AVX-512 variant (EDGE_KERNELS=avx2 or scalar keeps the portable loop) on a CPU
// with VBMI (Ice Lake and later; Cascade Lake has VNNI without it).
bool use_vbmi() {
  return active_variant() == Variant::Avx512Vnni && __builtin_cpu_supports("avx512vbmi");
}
}  // namespace
#endif

uint8_t lut_quantize(float v, float scale, int32_t zp, QType t) {
  if (std::isnan(v)) return static_cast<uint8_t>(zp);
  float r = std::nearbyint(v / scale) + static_cast<float>(zp);
  r = std::min(std::max(r, static_cast<float>(qmin(t))), static_cast<float>(qmax(t)));
  return static_cast<uint8_t>(static_cast<int32_t>(r));
}

float activation_value(const ActivationParams& a, float x) {
  switch (a.kind) {
    case Activation::Relu: return x > 0 ? x : 0.0f;
    case Activation::Clip: return std::min(std::max(x, a.p0), a.p1);
    case Activation::HardSigmoid: return std::max(0.0f, std::min(1.0f, a.p0 * x + a.p1));
    case Activation::HardSwish: return x * std::max(0.0f, std::min(1.0f, x / 6.0f + 0.5f));
    case Activation::Sigmoid: return 1.0f / (1.0f + std::exp(-x));
    case Activation::Tanh: return std::tanh(x);
    case Activation::LeakyRelu: return x >= 0 ? x : a.p0 * x;
    case Activation::Identity: return x;
  }
  return x;
}

Lut build_activation_lut(const ActivationParams& a, QType in_type, float in_scale, int32_t in_zp, QType out_type,
                         float out_scale, int32_t out_zp) {
  return build_lut(in_type, in_scale, in_zp, out_type, out_scale, out_zp, [&](float x) { return activation_value(a, x); });
}

void lut_row(const Lut& lut, const uint8_t* x, uint8_t* y, size_t n) {
#ifdef EDGE_LUT_VBMI
  if (use_vbmi()) return lut_vbmi(lut.table, x, y, n);
#endif
  for (size_t i = 0; i < n; ++i) y[i] = lut.table[x[i]];
}

void apply_lut(const Lut& lut, const void* x, void* y, size_t count, ThreadPool* pool) {
  const auto* in = static_cast<const uint8_t*>(x);
  auto* out = static_cast<uint8_t*>(y);
  constexpr size_t kChunk = 65536;
  const int chunks = static_cast<int>((count + kChunk - 1) / kChunk);
#ifdef EDGE_LUT_VBMI
  const bool vbmi = use_vbmi();
#endif
  auto task = [&](int c, int) {
    const size_t b = c * kChunk, e = std::min(count, b + kChunk);
    // Eight bytes per load and store: the per-byte loop is bound by its byte stores.
    const uint8_t* t = lut.table;
#ifdef EDGE_LUT_VBMI
    if (vbmi) return lut_vbmi(t, in + b, out + b, e - b);
#endif
    size_t i = b;
    for (; i + 8 <= e; i += 8) {
      uint64_t v;
      std::memcpy(&v, in + i, 8);
      uint64_t r = 0;
      for (int k = 0; k < 8; ++k) r |= static_cast<uint64_t>(t[(v >> (8 * k)) & 0xFF]) << (8 * k);
      std::memcpy(out + i, &r, 8);
    }
    for (; i < e; ++i) out[i] = t[in[i]];
  };
  parallel_for(pool, chunks, task);
}

}  // namespace edge::kernels

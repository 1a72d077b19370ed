// AVX2 requantization of u8 rows (copy.h requantize_u8_row), 16 bytes per step, also used by
// the VNNI variants: widen to int32, subtract the zero point, convert, multiply, divide,
// convert rounding half to even (default MXCSR), add the zero point, pack with saturation;
// the same float32 operations as the scalar formula, so the same bytes.
#include "kernels/copy.h"

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstring>

namespace edge::kernels {
namespace {

inline __m256i requant8(__m128i bytes8, __m256i vin_zp, __m256 vin, __m256 vout, __m256i vout_zp) {
  const __m256i q = _mm256_sub_epi32(_mm256_cvtepu8_epi32(bytes8), vin_zp);
  const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(q), vin);
  return _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_div_ps(v, vout)), vout_zp);
}

void requant_row_avx2(const uint8_t* x, size_t n, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp, uint8_t* y) {
  const __m256i vin_zp = _mm256_set1_epi32(in_zp), vout_zp = _mm256_set1_epi32(out_zp);
  const __m256 vin = _mm256_set1_ps(in_scale), vout = _mm256_set1_ps(out_scale);
  size_t i = 0;
  auto block16 = [&](const uint8_t* src, uint8_t* dst) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    const __m256i lo = requant8(b, vin_zp, vin, vout, vout_zp);
    const __m256i hi = requant8(_mm_srli_si128(b, 8), vin_zp, vin, vout, vout_zp);
    // packs works per 128-bit lane: [lo0 hi0 | lo1 hi1] -> reorder to lo0 lo1 hi0 hi1.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xD8);
    const __m128i p = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), p);
  };
  for (; i + 16 <= n; i += 16) block16(x + i, y + i);
  if (i < n) {  // the tail through a padded copy, with the same operations
    alignas(16) uint8_t t[16] = {0};
    alignas(16) uint8_t o[16];
    std::memcpy(t, x + i, n - i);
    block16(t, o);
    std::memcpy(y + i, o, n - i);
  }
}

}  // namespace

RequantRowFn requantize_u8_row_avx2() { return requant_row_avx2; }

}  // namespace edge::kernels
#else
namespace edge::kernels {
RequantRowFn requantize_u8_row_avx2() { return nullptr; }
}  // namespace edge::kernels
#endif

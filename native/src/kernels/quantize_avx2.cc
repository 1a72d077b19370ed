// AVX2 quantization of the float graph input (quantize.h quantize_u8_strided), 8 values per
// step, also used by the VNNI variants: divide, clamp to [-zp, 255 - zp], convert (rounding
// half to even under the default MXCSR mode), add zp, pack (exact: values are in [0, 255]).
#include "kernels/variant_table.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <cstring>

namespace edge::kernels {

void quantize_u8_avx2(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 vlo = _mm256_set1_ps(static_cast<float>(-zp)), vhi = _mm256_set1_ps(static_cast<float>(255 - zp));
  const __m256i vzp = _mm256_set1_epi32(zp);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));  // NaN -> 0 -> zero point
    v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(v, vs), vlo), vhi);
    const __m256i r = _mm256_add_epi32(_mm256_cvtps_epi32(v), vzp);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    const __m128i b = _mm_packus_epi16(w, w);
    if (y_stride == 1) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), b);
      continue;
    }
    alignas(16) uint8_t q[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(q), b);
    for (int k = 0; k < 8; ++k) y[(i + k) * y_stride] = q[k];
  }
  if (i < n) {  // the tail through a zero-padded copy, with the same operations
    alignas(32) float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(t, x + i, sizeof(float) * (n - i));
    __m256 v = _mm256_load_ps(t);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(v, vs), vlo), vhi);
    const __m256i r = _mm256_add_epi32(_mm256_cvtps_epi32(v), vzp);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    alignas(16) uint8_t q[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(q), _mm_packus_epi16(w, w));
    for (size_t k = 0; k < n - i; ++k) y[(i + k) * y_stride] = q[k];
  }
}

}  // namespace edge::kernels
#endif

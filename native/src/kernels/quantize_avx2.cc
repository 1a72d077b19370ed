// AVX2 quantization of the float graph input (quantize.h quantize_u8_strided and, for three
// planes into interleaved bytes, quantize_u8_planes3), 8 values per step, also used by the VNNI
// variants: divide, clamp to [-zp, 255 - zp], convert (rounding half to even under the default
// MXCSR mode), add zp, pack (exact: values are in [0, 255]).
#include "kernels/variant_table.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <cstring>

namespace edge::kernels {

namespace {
// 8 values: divide, clamp, round half to even, add zp, as int32 (in [0, 255]).
inline __m256i quantize8(__m256 v, __m256 vs, __m256 vlo, __m256 vhi, __m256i vzp) {
  v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));  // NaN -> 0 -> zero point
  v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(v, vs), vlo), vhi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(v), vzp);
}
}  // namespace

void quantize_u8_avx2(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 vlo = _mm256_set1_ps(static_cast<float>(-zp)), vhi = _mm256_set1_ps(static_cast<float>(255 - zp));
  const __m256i vzp = _mm256_set1_epi32(zp);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i r = quantize8(_mm256_loadu_ps(x + i), vs, vlo, vhi, vzp);
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
    const __m256i r = quantize8(_mm256_load_ps(t), vs, vlo, vhi, vzp);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    alignas(16) uint8_t q[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(q), _mm_packus_epi16(w, w));
    for (size_t k = 0; k < n - i; ++k) y[(i + k) * y_stride] = q[k];
  }
}

namespace {
// 16 values quantized exactly as quantize_u8_avx2 does them (two vectors of 8), as 16 bytes.
inline __m128i quantize16(const float* x, __m256 vs, __m256 vlo, __m256 vhi, __m256i vzp) {
  const __m256i ra = quantize8(_mm256_loadu_ps(x), vs, vlo, vhi, vzp), rb = quantize8(_mm256_loadu_ps(x + 8), vs, vlo, vhi, vzp);
  // packs works within 128-bit lanes: a0-3 b0-3 | a4-7 b4-7, reordered to a0-7 | b0-7.
  const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(ra, rb), 0xD8);
  return _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}
}  // namespace

void quantize_u8_planes3_avx2(const float* const planes[3], size_t n, float scale, int32_t zp, uint8_t* y) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 vlo = _mm256_set1_ps(static_cast<float>(-zp)), vhi = _mm256_set1_ps(static_cast<float>(255 - zp));
  const __m256i vzp = _mm256_set1_epi32(zp);
  // Byte shuffles that spread 16 R, G and B bytes over the 48 interleaved output bytes (-1: zero).
  const __m128i r0 = _mm_setr_epi8(0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1, 5);
  const __m128i g0 = _mm_setr_epi8(-1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1);
  const __m128i b0 = _mm_setr_epi8(-1, -1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1);
  const __m128i r1 = _mm_setr_epi8(-1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10, -1);
  const __m128i g1 = _mm_setr_epi8(5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10);
  const __m128i b1 = _mm_setr_epi8(-1, 5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1);
  const __m128i r2 = _mm_setr_epi8(-1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1, -1);
  const __m128i g2 = _mm_setr_epi8(-1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1);
  const __m128i b2 = _mm_setr_epi8(10, -1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15);
  const auto mix = [](__m128i r, __m128i g, __m128i b, __m128i mr, __m128i mg, __m128i mb) {
    return _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(r, mr), _mm_shuffle_epi8(g, mg)), _mm_shuffle_epi8(b, mb));
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i R = quantize16(planes[0] + i, vs, vlo, vhi, vzp);
    const __m128i G = quantize16(planes[1] + i, vs, vlo, vhi, vzp);
    const __m128i B = quantize16(planes[2] + i, vs, vlo, vhi, vzp);
    auto* o = reinterpret_cast<__m128i*>(y + 3 * i);
    _mm_storeu_si128(o, mix(R, G, B, r0, g0, b0));
    _mm_storeu_si128(o + 1, mix(R, G, B, r1, g1, b1));
    _mm_storeu_si128(o + 2, mix(R, G, B, r2, g2, b2));
  }
  for (int c = 0; c < 3; ++c) quantize_u8_avx2(planes[c] + i, n - i, scale, zp, y + 3 * i + c, 3);
}

}  // namespace edge::kernels
#endif

// qadd / qmul loops (eltwise_span.h) compiled with AVX2, used by every x86 variant's table, with
// a hand-vectorized body: 16 elements a step, 8 float lanes, each byte widened once
// (vpmovzxbd / vpmovsxbd), rounding by vcvtps2dq and saturating packs. The compiler's
// vectorization of the portable loop unpacked bytes through 16-bit steps, rounded by adding
// and subtracting 1.5 * 2^23 and truncated by masks: 0.26 ns an element here.
// Same bytes as the portable loop: the same float32 operations in the same order (no FMA: the
// library builds with -ffp-contract=off); max(flo, v) and min(fhi, v) are the loop's
// comparisons, NaN included; vcvtps2dq rounds half to even as the 1.5 * 2^23 trick does in the
// default rounding mode, for the clamped |v| < 2^22; and the clamped value plus the zero point
// lies in the type's range, where the saturating packs equal the loop's truncating store (a
// NaN cannot reach the store: check() in eltwise.cc bounds the scale ratios).
#include "kernels/variant_table.h"

#if defined(__AVX2__)
#include <immintrin.h>

#include <type_traits>

#define EDGE_ELTWISE_SIMD 1
#include "kernels/eltwise_span.h"

namespace edge::kernels {
namespace {

template <class T>
inline __m256i widen8(const T* p) {
  const __m128i x = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return std::is_same<T, uint8_t>::value ? _mm256_cvtepu8_epi32(x) : _mm256_cvtepi8_epi32(x);
}

template <class T, bool kMul, bool kScalarB>
size_t eltwise_simd(const T* a, const T* b, T* y, size_t n, const EltwiseConsts& k) {
  const __m256i azp = _mm256_set1_epi32(k.azp), bzp = _mm256_set1_epi32(k.bzp), yzp = _mm256_set1_epi32(k.yzp);
  const __m256 ra = _mm256_set1_ps(k.ra), rb = _mm256_set1_ps(k.rb), rm = _mm256_set1_ps(k.rm);
  const __m256 flo = _mm256_set1_ps(k.flo), fhi = _mm256_set1_ps(k.fhi);
  const __m256 db_scalar = kScalarB && n > 0 ? _mm256_set1_ps(static_cast<float>(static_cast<int32_t>(b[0]) - k.bzp)) : _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i q[2];
    for (int h = 0; h < 2; ++h) {
      const __m256 da = _mm256_cvtepi32_ps(_mm256_sub_epi32(widen8(a + i + 8 * h), azp));
      const __m256 db = kScalarB ? db_scalar : _mm256_cvtepi32_ps(_mm256_sub_epi32(widen8(b + i + 8 * h), bzp));
      __m256 v = kMul ? _mm256_mul_ps(rm, _mm256_mul_ps(da, db)) : _mm256_add_ps(_mm256_mul_ps(ra, da), _mm256_mul_ps(rb, db));
      v = _mm256_min_ps(fhi, _mm256_max_ps(flo, v));
      q[h] = _mm256_add_epi32(_mm256_cvtps_epi32(v), yzp);
    }
    // int32 -> int16 per 128-bit lane, lanes back in order, then int16 -> bytes.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8);
    const __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
    const __m128i bytes = std::is_same<T, uint8_t>::value ? _mm_packus_epi16(lo, hi) : _mm_packs_epi16(lo, hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), bytes);
  }
  return i;
}

}  // namespace

void eltwise_avx2(const EltwiseArgs& e, size_t begin, size_t end, bool mul) { eltwise_range(e, begin, end, mul); }
}  // namespace edge::kernels
#endif

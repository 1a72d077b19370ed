// The AVX2 dot-product row of qmatmul.h: vpmaddwd on centred int16 operands. Each product is
// at most 255 * 255 and a pair at most 130050, so the int32 lanes hold the exact sum.
#include "kernels/qmatmul.h"

#if defined(__AVX2__)
#include <immintrin.h>

namespace edge::kernels {

namespace {
inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
}  // namespace

void qdot_row_avx2(const int16_t* a, const int16_t* bt, size_t ldb, int K, int N, int32_t* acc) {
  int n = 0;
  for (; n + 4 <= N; n += 4) {
    const int16_t* b0 = bt + static_cast<size_t>(n) * ldb;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (int k = 0; k < K; k += 16) {
      const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k));
      s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(av, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + k))));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(av, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + ldb + k))));
      s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(av, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 2 * ldb + k))));
      s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(av, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 3 * ldb + k))));
    }
    acc[n] = hsum(s0);
    acc[n + 1] = hsum(s1);
    acc[n + 2] = hsum(s2);
    acc[n + 3] = hsum(s3);
  }
  for (; n < N; ++n) {
    const int16_t* b0 = bt + static_cast<size_t>(n) * ldb;
    __m256i s0 = _mm256_setzero_si256();
    for (int k = 0; k < K; k += 16) {
      s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k)),
                                                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + k))));
    }
    acc[n] = hsum(s0);
  }
}

}  // namespace edge::kernels
#elif defined(__x86_64__) || defined(_M_X64)
#error "qmatmul_avx2.cc must be compiled with -mavx2 on x86-64 (kernels.cmake)"
#endif

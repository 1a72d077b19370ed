// The AVX2 dot-product row of qmatmul.h: vpmaddwd of A's broadcast k-pair against 8 columns'
// k-pairs of B. Each product is at most 255 * 255 and a pair at most 130050, so the int32
// lanes hold the exact sum.
#include "kernels/qmatmul.h"

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstring>

namespace edge::kernels {

void qdot_row_avx2(const int16_t* a, const int16_t* bp, int Kp, int Np, int32_t* acc) {
  const size_t stride = static_cast<size_t>(Np) * 2;  // int16 per k-pair row of B
  int n = 0;
  for (; n + 16 <= Np; n += 16) {
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    const int16_t* b = bp + static_cast<size_t>(n) * 2;
    for (int p = 0; p < Kp / 2; ++p, b += stride) {
      int32_t pair;
      std::memcpy(&pair, a + 2 * p, 4);
      const __m256i av = _mm256_set1_epi32(pair);
      s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(av, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b))));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(av, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16))));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + n), s0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + n + 8), s1);
  }
  for (; n < Np; n += 8) {
    __m256i s0 = _mm256_setzero_si256();
    const int16_t* b = bp + static_cast<size_t>(n) * 2;
    for (int p = 0; p < Kp / 2; ++p, b += stride) {
      int32_t pair;
      std::memcpy(&pair, a + 2 * p, 4);
      s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_set1_epi32(pair), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b))));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + n), s0);
  }
}

}  // namespace edge::kernels
#elif defined(__x86_64__) || defined(_M_X64)
#error "qmatmul_avx2.cc must be compiled with -mavx2 on x86-64 (kernels.cmake)"
#endif

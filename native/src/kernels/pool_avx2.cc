// AVX2 2x2 max pooling (pool.h max_pool_2x2), also used by the VNNI variants: per output
// pixel, the maximum of four channel rows, 32 channels per step (then 16, 8, single bytes).
#include "kernels/variant_table.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/pool.h"

namespace edge::kernels {

void max_pool_2x2_avx2(const PoolShape& s, const uint8_t* x, uint8_t* y) {
  const int OH = s.H / 2, OW = s.W / 2, C = s.C;  // out_h(), out_w() for this shape
  const size_t row = static_cast<size_t>(s.W) * C;
  for (int n = 0; n < s.batch; ++n) {
    const uint8_t* xn = x + static_cast<size_t>(n) * s.H * row;
    for (int oh = 0; oh < OH; ++oh) {
      const uint8_t* r0 = xn + static_cast<size_t>(2 * oh) * row;
      const uint8_t* r1 = r0 + row;
      uint8_t* out = y + (static_cast<size_t>(n) * OH + oh) * OW * C;
      for (int ow = 0; ow < OW; ++ow) {
        const uint8_t* a = r0 + static_cast<size_t>(2 * ow) * C;
        const uint8_t* b = r1 + static_cast<size_t>(2 * ow) * C;
        uint8_t* o = out + static_cast<size_t>(ow) * C;
        int c = 0;
        for (; c + 32 <= C; c += 32) {
          const __m256i m0 = _mm256_max_epu8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + c)),
                                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + c + C)));
          const __m256i m1 = _mm256_max_epu8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + c)),
                                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + c + C)));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + c), _mm256_max_epu8(m0, m1));
        }
        for (; c + 16 <= C; c += 16) {
          const __m128i m0 = _mm_max_epu8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + c)),
                                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + c + C)));
          const __m128i m1 = _mm_max_epu8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + c)),
                                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + c + C)));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(o + c), _mm_max_epu8(m0, m1));
        }
        for (; c + 8 <= C; c += 8) {
          const __m128i m0 = _mm_max_epu8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + c)),
                                          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + c + C)));
          const __m128i m1 = _mm_max_epu8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + c)),
                                          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + c + C)));
          _mm_storel_epi64(reinterpret_cast<__m128i*>(o + c), _mm_max_epu8(m0, m1));
        }
        for (; c < C; ++c) {
          const uint8_t m0 = a[c] > a[c + C] ? a[c] : a[c + C];
          const uint8_t m1 = b[c] > b[c + C] ? b[c] : b[c + C];
          o[c] = m0 > m1 ? m0 : m1;
        }
      }
    }
  }
}

}  // namespace edge::kernels
#endif

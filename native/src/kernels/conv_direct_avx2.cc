// AVX2 + FMA direct small-channel convolution (conv_direct.h), also used by the AVX-512 VNNI
// and AVX-VNNI variants. The input is first widened once into a padded float copy (x - zp,
// padding 0), so the tap loop has no bounds checks and each tap is one broadcast and one fused
// multiply-add per 8 output channels. Every product and partial sum is an integer below 2^24,
// so FMA rounding cannot change a result.
#include "kernels/variant_table.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <cstring>

#include "kernels/conv.h"

namespace edge::kernels {
namespace {

template <int B, int P>
inline void pixels(const ConvShape& s, int Mp, const float* w, const int32_t* bias, const float* scales,
                   const float* prow, size_t row, int ow, int M, __m256 vlo, __m256 vhi, __m256i vzp, uint8_t* out) {
  const int C = s.C;
  const size_t pstep = static_cast<size_t>(s.stride_w) * C;
  __m256 a[P][B];
  for (int p = 0; p < P; ++p)
    for (int b = 0; b < B; ++b) a[p][b] = _mm256_setzero_ps();
  const float* wt = w;
  for (int kh = 0; kh < s.kernel_h; ++kh) {
    const float* px = prow + static_cast<size_t>(kh) * s.dilation_h * row + static_cast<size_t>(ow) * pstep;
    for (int kw = 0; kw < s.kernel_w; ++kw, px += s.dilation_w * C) {
      for (int c = 0; c < C; ++c, wt += Mp) {
        __m256 wv[B];
        for (int b = 0; b < B; ++b) wv[b] = _mm256_loadu_ps(wt + 8 * b);
        for (int p = 0; p < P; ++p) {
          const __m256 xv = _mm256_broadcast_ss(px + p * pstep + c);
          for (int b = 0; b < B; ++b) a[p][b] = _mm256_fmadd_ps(xv, wv[b], a[p][b]);
        }
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    alignas(32) uint8_t bytes[8 * B];
    for (int b = 0; b < B; ++b) {
      __m256i v = _mm256_add_epi32(_mm256_cvtps_epi32(a[p][b]), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + 8 * b)));
      __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(scales + 8 * b));
      f = _mm256_min_ps(_mm256_max_ps(f, vlo), vhi);
      const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), vzp);
      const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(bytes + 8 * b), _mm_packus_epi16(w16, w16));
    }
    std::memcpy(out + static_cast<size_t>(p) * M, bytes, static_cast<size_t>(M));
  }
}

template <int B>
void run(const DirectConvArgs& a) {
  const ConvShape& s = *a.s;
  const int M = s.out_channels, OH = a.OH, OW = a.OW, C = s.C, Mp = a.Mp;
  const int PH = s.H + s.pad_top + s.pad_bottom, PW = s.W + s.pad_left + s.pad_right;
  const __m256 vlo = _mm256_set1_ps(static_cast<float>(a.lo - a.y_zp)), vhi = _mm256_set1_ps(static_cast<float>(a.hi - a.y_zp));
  const __m256i vzp = _mm256_set1_epi32(a.y_zp);
  const size_t row = static_cast<size_t>(PW) * C;
  float* padded = a.scratch;
  for (int n = 0; n < s.batch; ++n) {
    const uint8_t* xn = a.x + static_cast<size_t>(n) * s.H * s.W * C;
    std::memset(padded, 0, sizeof(float) * PH * row);
    for (int h = 0; h < s.H; ++h) {
      float* dst = padded + (h + s.pad_top) * row + static_cast<size_t>(s.pad_left) * C;
      const uint8_t* src = xn + static_cast<size_t>(h) * s.W * C;
      for (int i = 0; i < s.W * C; ++i) dst[i] = static_cast<float>(static_cast<int32_t>(src[i]) - a.x_zp);
    }
    for (int oh = 0; oh < OH; ++oh) {
      const float* prow = padded + static_cast<size_t>(oh) * s.stride_h * row;
      uint8_t* yrow = a.y + (static_cast<size_t>(n) * OH + oh) * OW * M;
      // Several pixels at a time: independent FMA chains instead of one latency-bound chain
      // (as many as fit the 16 vector registers).
      constexpr int P = B <= 2 ? 4 : 2;
      int ow = 0;
      for (; ow + P <= OW; ow += P)
        pixels<B, P>(s, Mp, a.w, a.bias, a.scales, prow, row, ow, M, vlo, vhi, vzp, yrow + static_cast<size_t>(ow) * M);
      for (; ow < OW; ++ow)
        pixels<B, 1>(s, Mp, a.w, a.bias, a.scales, prow, row, ow, M, vlo, vhi, vzp, yrow + static_cast<size_t>(ow) * M);
    }
  }
}

}  // namespace

void direct_conv_avx2(const DirectConvArgs& a) {
  switch ((a.Mp + 7) / 8) {  // DirectConv::suits: at most 32 output channels
    case 1: run<1>(a); break;
    case 2: run<2>(a); break;
    case 3: run<3>(a); break;
    default: run<4>(a); break;
  }
}

}  // namespace edge::kernels
#endif

#include "engine/direct.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EDGE_DIRECT_AVX2 1
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define EDGE_DIRECT_NEON 1
#endif

#include "kernels/cpu_features.h"
#include "kernels/dispatch.h"

namespace edge::engine {
namespace {
// Round half to even under the default rounding mode, without a libm call where possible.
inline int32_t round_even(float f) {
#if defined(__SSE2__)
  return _mm_cvtss_si32(_mm_set_ss(f));
#else
  return static_cast<int32_t>(std::nearbyint(f));
#endif
}
}  // namespace

void quantize_u8_strided(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride) {
  // Clamping to [0 - zp, 255 - zp] before rounding equals saturating after it (integer bounds).
  const float lo = static_cast<float>(-zp), hi = static_cast<float>(255 - zp);
  size_t i = 0;
#if defined(__SSE2__)
  const __m128 vs = _mm_set1_ps(scale), vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
  const __m128i vzp = _mm_set1_epi32(zp);
  alignas(16) int32_t q[4];
  for (; i + 4 <= n; i += 4) {
    __m128 v = _mm_loadu_ps(x + i);
    v = _mm_and_ps(v, _mm_cmpord_ps(v, v));  // NaN -> 0 -> zero point
    v = _mm_min_ps(_mm_max_ps(_mm_div_ps(v, vs), vlo), vhi);
    const __m128i r = _mm_add_epi32(_mm_cvtps_epi32(v), vzp);
    if (y_stride == 1) {
      const __m128i w = _mm_packs_epi32(r, r);  // values are in [0, 255]: packing is exact
      const int32_t b4 = _mm_cvtsi128_si32(_mm_packus_epi16(w, w));
      std::memcpy(y + i, &b4, 4);
      continue;
    }
    _mm_store_si128(reinterpret_cast<__m128i*>(q), r);
    for (int k = 0; k < 4; ++k) y[(i + k) * y_stride] = static_cast<uint8_t>(q[k]);
  }
#endif
  for (; i < n; ++i) {
    float v = x[i];
    if (std::isnan(v)) v = 0;
    v = std::min(std::max(v / scale, lo), hi);
    y[i * y_stride] = static_cast<uint8_t>(round_even(v) + zp);
  }
}

void max_pool_2x2(const kernels::PoolShape& s, const uint8_t* x, uint8_t* y) {
  const int OH = s.out_h(), OW = s.out_w(), C = s.C;
  const size_t row = static_cast<size_t>(s.W) * C;
  for (int n = 0; n < s.batch; ++n) {
    const uint8_t* xn = x + static_cast<size_t>(n) * s.H * row;
    for (int oh = 0; oh < OH; ++oh) {
      const uint8_t* __restrict r0 = xn + static_cast<size_t>(2 * oh) * row;
      const uint8_t* __restrict r1 = r0 + row;
      uint8_t* __restrict out = y + (static_cast<size_t>(n) * OH + oh) * OW * C;
      for (int ow = 0; ow < OW; ++ow) {
        const uint8_t* a = r0 + static_cast<size_t>(2 * ow) * C;
        const uint8_t* b = r1 + static_cast<size_t>(2 * ow) * C;
        uint8_t* o = out + static_cast<size_t>(ow) * C;
        for (int c = 0; c < C; ++c) {
          const uint8_t m0 = a[c] > a[c + C] ? a[c] : a[c + C];
          const uint8_t m1 = b[c] > b[c + C] ? b[c] : b[c + C];
          o[c] = m0 > m1 ? m0 : m1;
        }
      }
    }
  }
}

DirectConv::DirectConv(const kernels::ConvShape& s, const int8_t* w) : s_(s) {
  const int M = s.out_channels, C = s.C, KH = s.kernel_h, KW = s.kernel_w;
  Mp_ = (M + 7) & ~7;
  // The kernels' variant choice governs this loop too: EDGE_KERNELS=scalar (tests) runs the
  // portable C++ below, so the scalar paths stay covered on x86.
  simd_ = kernels::active_variant() != kernels::Variant::Scalar;
#if defined(EDGE_DIRECT_AVX2)
  avx2_ = simd_ && kernels::cpu_features().avx2 && __builtin_cpu_supports("fma");
#endif
  w_.assign(static_cast<size_t>(KH) * KW * C * Mp_, 0.0f);
  for (int m = 0; m < M; ++m)
    for (int c = 0; c < C; ++c)
      for (int kh = 0; kh < KH; ++kh)
        for (int kw = 0; kw < KW; ++kw)
          w_[((static_cast<size_t>(kh) * KW + kw) * C + c) * Mp_ + m] = w[((static_cast<size_t>(m) * C + c) * KH + kh) * KW + kw];
}

namespace {

#if defined(__SSE2__)
// B blocks of 4 output channels for one output pixel, accumulators in registers.
template <int B>
inline void pixel_sse(const kernels::ConvShape& s, int Mp, const float* w, const uint8_t* xn, int oh, int ow, int32_t x_zp,
                      __m128* a) {
  for (int b = 0; b < B; ++b) a[b] = _mm_setzero_ps();
  for (int kh = 0; kh < s.kernel_h; ++kh) {
    const int ih = oh * s.stride_h - s.pad_top + kh * s.dilation_h;
    if (ih < 0 || ih >= s.H) continue;  // padding is the zero point: contributes 0
    for (int kw = 0; kw < s.kernel_w; ++kw) {
      const int iw = ow * s.stride_w - s.pad_left + kw * s.dilation_w;
      if (iw < 0 || iw >= s.W) continue;
      const uint8_t* px = xn + (static_cast<size_t>(ih) * s.W + iw) * s.C;
      const float* wt = w + (static_cast<size_t>(kh) * s.kernel_w + kw) * s.C * Mp;
      for (int c = 0; c < s.C; ++c) {
        const __m128 xv = _mm_set1_ps(static_cast<float>(static_cast<int32_t>(px[c]) - x_zp));
        const float* wc = wt + static_cast<size_t>(c) * Mp;
        for (int b = 0; b < B; ++b) a[b] = _mm_add_ps(a[b], _mm_mul_ps(xv, _mm_loadu_ps(wc + 4 * b)));
      }
    }
  }
}
#endif

#if defined(EDGE_DIRECT_AVX2)
// AVX2 + FMA: 8 output channels per register. The input is first widened once into a padded
// float copy (x - zp, padding 0), so the tap loop has no bounds checks and each tap is one
// broadcast and one fused multiply-add per 8 channels. Every product and partial sum is an
// integer below 2^24, so FMA rounding cannot change a result. Chosen at run time.
template <int B, int P>
__attribute__((target("avx2,fma"))) inline void pixels_avx2(const kernels::ConvShape& s, int Mp, const float* w,
                                                            const int32_t* bias, const float* scales, const float* prow,
                                                            size_t row, int ow, int M, __m256 vlo, __m256 vhi, __m256i vzp,
                                                            uint8_t* out) {
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
__attribute__((target("avx2,fma"))) void run_avx2(const kernels::ConvShape& s, int Mp, const float* w, const int32_t* bias,
                                                  const float* scales, const uint8_t* x, int32_t x_zp, int32_t y_zp,
                                                  float flo, float fhi, uint8_t* y, float* padded) {
  const int M = s.out_channels, OH = s.out_h(), OW = s.out_w(), C = s.C;
  const int PH = s.H + s.pad_top + s.pad_bottom, PW = s.W + s.pad_left + s.pad_right;
  const __m256 vlo = _mm256_set1_ps(flo), vhi = _mm256_set1_ps(fhi);
  const __m256i vzp = _mm256_set1_epi32(y_zp);
  const size_t row = static_cast<size_t>(PW) * C;
  for (int n = 0; n < s.batch; ++n) {
    const uint8_t* xn = x + static_cast<size_t>(n) * s.H * s.W * C;
    std::memset(padded, 0, sizeof(float) * PH * row);
    for (int h = 0; h < s.H; ++h) {
      float* dst = padded + (h + s.pad_top) * row + static_cast<size_t>(s.pad_left) * C;
      const uint8_t* src = xn + static_cast<size_t>(h) * s.W * C;
      for (int i = 0; i < s.W * C; ++i) dst[i] = static_cast<float>(static_cast<int32_t>(src[i]) - x_zp);
    }
    for (int oh = 0; oh < OH; ++oh) {
      const float* prow = padded + static_cast<size_t>(oh) * s.stride_h * row;
      int ow = 0;
      // Several pixels at a time: independent FMA chains instead of one latency-bound chain
      // (as many as fit the 16 vector registers).
      constexpr int P = B <= 2 ? 4 : 2;
      for (; ow + P <= OW; ow += P) pixels_avx2<B, P>(s, Mp, w, bias, scales, prow, row, ow, M, vlo, vhi, vzp, y + ((static_cast<size_t>(n) * OH + oh) * OW + ow) * M);
      for (; ow < OW; ++ow) pixels_avx2<B, 1>(s, Mp, w, bias, scales, prow, row, ow, M, vlo, vhi, vzp, y + ((static_cast<size_t>(n) * OH + oh) * OW + ow) * M);
    }
  }
}
#endif

#if defined(EDGE_DIRECT_NEON)
// NEON (AArch64): the AVX2 scheme with 4-lane registers; vcvtnq rounds half to even.
template <int B, int P>
inline void pixels_neon(const kernels::ConvShape& s, int Mp, const float* w, const int32_t* bias, const float* scales,
                        const float* prow, size_t row, int ow, int M, float flo, float fhi, int32_t y_zp, uint8_t* out) {
  const int C = s.C;
  const size_t pstep = static_cast<size_t>(s.stride_w) * C;
  float32x4_t a[P][B];
  for (int p = 0; p < P; ++p)
    for (int b = 0; b < B; ++b) a[p][b] = vdupq_n_f32(0);
  const float* wt = w;
  for (int kh = 0; kh < s.kernel_h; ++kh) {
    const float* px = prow + static_cast<size_t>(kh) * s.dilation_h * row + static_cast<size_t>(ow) * pstep;
    for (int kw = 0; kw < s.kernel_w; ++kw, px += s.dilation_w * C) {
      for (int c = 0; c < C; ++c, wt += Mp) {
        float32x4_t wv[B];
        for (int b = 0; b < B; ++b) wv[b] = vld1q_f32(wt + 4 * b);
        for (int p = 0; p < P; ++p) {
          const float xv = px[p * pstep + c];
          for (int b = 0; b < B; ++b) a[p][b] = vfmaq_n_f32(a[p][b], wv[b], xv);
        }
      }
    }
  }
  const float32x4_t vlo = vdupq_n_f32(flo), vhi = vdupq_n_f32(fhi);
  const int32x4_t vzp = vdupq_n_s32(y_zp);
  for (int p = 0; p < P; ++p) {
    uint8_t bytes[4 * B + 8];
    for (int b = 0; b < B; ++b) {
      const int32x4_t v = vaddq_s32(vcvtnq_s32_f32(a[p][b]), vld1q_s32(bias + 4 * b));
      float32x4_t f = vmulq_f32(vcvtq_f32_s32(v), vld1q_f32(scales + 4 * b));
      f = vminq_f32(vmaxq_f32(f, vlo), vhi);
      const int32x4_t q = vaddq_s32(vcvtnq_s32_f32(f), vzp);
      const uint16x4_t h = vqmovun_s32(q);
      const uint8x8_t by = vqmovn_u16(vcombine_u16(h, h));
      vst1_lane_u32(reinterpret_cast<uint32_t*>(bytes + 4 * b), vreinterpret_u32_u8(by), 0);
    }
    std::memcpy(out + static_cast<size_t>(p) * M, bytes, static_cast<size_t>(M));
  }
}

template <int B>
void run_neon(const kernels::ConvShape& s, int Mp, const float* w, const int32_t* bias, const float* scales,
              const uint8_t* x, int32_t x_zp, int32_t y_zp, float flo, float fhi, uint8_t* y, float* padded) {
  const int M = s.out_channels, OH = s.out_h(), OW = s.out_w(), C = s.C;
  const int PH = s.H + s.pad_top + s.pad_bottom, PW = s.W + s.pad_left + s.pad_right;
  const size_t row = static_cast<size_t>(PW) * C;
  for (int n = 0; n < s.batch; ++n) {
    const uint8_t* xn = x + static_cast<size_t>(n) * s.H * s.W * C;
    std::memset(padded, 0, sizeof(float) * PH * row);
    for (int h = 0; h < s.H; ++h) {
      float* dst = padded + (h + s.pad_top) * row + static_cast<size_t>(s.pad_left) * C;
      const uint8_t* src = xn + static_cast<size_t>(h) * s.W * C;
      for (int i = 0; i < s.W * C; ++i) dst[i] = static_cast<float>(static_cast<int32_t>(src[i]) - x_zp);
    }
    for (int oh = 0; oh < OH; ++oh) {
      const float* prow = padded + static_cast<size_t>(oh) * s.stride_h * row;
      uint8_t* yrow = y + (static_cast<size_t>(n) * OH + oh) * OW * M;
      constexpr int P = B <= 4 ? 4 : 2;
      int ow = 0;
      for (; ow + P <= OW; ow += P) pixels_neon<B, P>(s, Mp, w, bias, scales, prow, row, ow, M, flo, fhi, y_zp, yrow + static_cast<size_t>(ow) * M);
      for (; ow < OW; ++ow) pixels_neon<B, 1>(s, Mp, w, bias, scales, prow, row, ow, M, flo, fhi, y_zp, yrow + static_cast<size_t>(ow) * M);
    }
  }
}
#endif

}  // namespace

void DirectConv::run(const uint8_t* x, int32_t x_zp, const int32_t* bias, const float* scales, int scale_count,
                     int32_t y_zp, int32_t lo, int32_t hi, uint8_t* y, float* acc) const {
  const int M = s_.out_channels, C = s_.C, OH = s_.out_h(), OW = s_.out_w();
  const float flo = static_cast<float>(lo - y_zp), fhi = static_cast<float>(hi - y_zp);
#if defined(EDGE_DIRECT_AVX2)
  if (avx2_ && Mp_ <= 32) {
    const int B = (Mp_ + 7) / 8;
    if (B == 1) run_avx2<1>(s_, Mp_, w_.data(), bias_.data(), scales_.data(), x, x_zp, y_zp, flo, fhi, y, acc);
    else if (B == 2) run_avx2<2>(s_, Mp_, w_.data(), bias_.data(), scales_.data(), x, x_zp, y_zp, flo, fhi, y, acc);
    else if (B == 3) run_avx2<3>(s_, Mp_, w_.data(), bias_.data(), scales_.data(), x, x_zp, y_zp, flo, fhi, y, acc);
    else run_avx2<4>(s_, Mp_, w_.data(), bias_.data(), scales_.data(), x, x_zp, y_zp, flo, fhi, y, acc);
    return;
  }
#endif
#if defined(EDGE_DIRECT_NEON)
  if (simd_ && Mp_ <= 32) {
    const float* wd = w_.data();
    const int32_t* bd = bias_.data();
    const float* sd = scales_.data();
    switch (Mp_ / 8) {  // Mp is a multiple of 8: 2, 4, 6 or 8 blocks of 4
      case 1: run_neon<2>(s_, Mp_, wd, bd, sd, x, x_zp, y_zp, flo, fhi, y, acc); break;
      case 2: run_neon<4>(s_, Mp_, wd, bd, sd, x, x_zp, y_zp, flo, fhi, y, acc); break;
      case 3: run_neon<6>(s_, Mp_, wd, bd, sd, x, x_zp, y_zp, flo, fhi, y, acc); break;
      default: run_neon<8>(s_, Mp_, wd, bd, sd, x, x_zp, y_zp, flo, fhi, y, acc); break;
    }
    return;
  }
#endif
  for (int n = 0; n < s_.batch; ++n) {
    const uint8_t* xn = x + static_cast<size_t>(n) * s_.H * s_.W * C;
    for (int oh = 0; oh < OH; ++oh) {
      for (int ow = 0; ow < OW; ++ow) {
        uint8_t* out = y + ((static_cast<size_t>(n) * OH + oh) * OW + ow) * M;
        // Sums of (x - zp) * w stay below 2^24 in magnitude (kMaxTaps taps), so float is exact.
#if defined(__SSE2__)
        if (simd_ && Mp_ <= 16) {
          __m128 a[4];
          switch (Mp_ / 4) {
            case 1: pixel_sse<1>(s_, Mp_, w_.data(), xn, oh, ow, x_zp, a); break;
            case 2: pixel_sse<2>(s_, Mp_, w_.data(), xn, oh, ow, x_zp, a); break;
            case 3: pixel_sse<3>(s_, Mp_, w_.data(), xn, oh, ow, x_zp, a); break;
            default: pixel_sse<4>(s_, Mp_, w_.data(), xn, oh, ow, x_zp, a); break;
          }
          // The kernels' requantization, 4 lanes: float(acc + bias) * scale, clamp, round, + zp.
          const __m128 vlo = _mm_set1_ps(flo), vhi = _mm_set1_ps(fhi);
          const __m128i vzp = _mm_set1_epi32(y_zp);
          alignas(16) uint8_t bytes[16];
          for (int b = 0; b < Mp_ / 4; ++b) {
            __m128i v = _mm_cvtps_epi32(a[b]);
            if (bias) v = _mm_add_epi32(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(bias_.data() + 4 * b)));
            const __m128 sc = scale_count > 1 ? _mm_loadu_ps(scales_.data() + 4 * b) : _mm_set1_ps(scales[0]);
            __m128 f = _mm_mul_ps(_mm_cvtepi32_ps(v), sc);
            f = _mm_min_ps(_mm_max_ps(f, vlo), vhi);
            const __m128i q = _mm_add_epi32(_mm_cvtps_epi32(f), vzp);
            const __m128i w16 = _mm_packs_epi32(q, q);
            const int32_t b4 = _mm_cvtsi128_si32(_mm_packus_epi16(w16, w16));
            std::memcpy(bytes + 4 * b, &b4, 4);
          }
          std::memcpy(out, bytes, static_cast<size_t>(M));
          continue;
        }
#endif
        std::memset(acc, 0, sizeof(float) * Mp_);
        for (int kh = 0; kh < s_.kernel_h; ++kh) {
          const int ih = oh * s_.stride_h - s_.pad_top + kh * s_.dilation_h;
          if (ih < 0 || ih >= s_.H) continue;
          for (int kw = 0; kw < s_.kernel_w; ++kw) {
            const int iw = ow * s_.stride_w - s_.pad_left + kw * s_.dilation_w;
            if (iw < 0 || iw >= s_.W) continue;
            const uint8_t* px = xn + (static_cast<size_t>(ih) * s_.W + iw) * C;
            const float* wt = w_.data() + (static_cast<size_t>(kh) * s_.kernel_w + kw) * C * Mp_;
            for (int c = 0; c < C; ++c) {
              const float xv = static_cast<float>(static_cast<int32_t>(px[c]) - x_zp);
              const float* __restrict wc = wt + static_cast<size_t>(c) * Mp_;
              float* __restrict a = acc;
              for (int m = 0; m < Mp_; ++m) a[m] += xv * wc[m];
            }
          }
        }
        for (int m = 0; m < M; ++m) {
          const int32_t v = static_cast<int32_t>(acc[m]) + (bias ? bias[m] : 0);
          float f = static_cast<float>(v) * scales[scale_count > 1 ? m : 0];
          f = f < flo ? flo : f;
          f = f > fhi ? fhi : f;
          out[m] = static_cast<uint8_t>(round_even(f) + y_zp);
        }
      }
    }
  }
}

void DirectConv::set_channels(const int32_t* bias, const float* scales, int scale_count) {
  bias_.assign(Mp_, 0);
  scales_.assign(Mp_, 1.0f);
  for (int m = 0; m < s_.out_channels; ++m) {
    bias_[m] = bias ? bias[m] : 0;
    scales_[m] = scales[scale_count > 1 ? m : 0];
  }
}

}  // namespace edge::engine

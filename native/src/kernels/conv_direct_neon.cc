// NEON (AArch64) direct small-channel convolution (conv_direct.h), also used by the
// dot-product variant: the AVX2 scheme (conv_direct_avx2.cc) with 4-lane registers; vcvtnq
// rounds half to even.
#include "kernels/variant_table.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "kernels/conv.h"

namespace edge::kernels {
namespace {

template <int B, int P>
inline void pixels(const ConvShape& s, int Mp, const float* w, const int32_t* bias, const float* scales,
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
void run(const DirectConvArgs& a) {
  const ConvShape& s = *a.s;
  const int M = s.out_channels, OH = a.OH, OW = a.OW, C = s.C, Mp = a.Mp;
  const int PH = s.H + s.pad_top + s.pad_bottom, PW = s.W + s.pad_left + s.pad_right;
  const float flo = static_cast<float>(a.lo - a.y_zp), fhi = static_cast<float>(a.hi - a.y_zp);
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
      constexpr int P = B <= 4 ? 4 : 2;
      int ow = 0;
      for (; ow + P <= OW; ow += P)
        pixels<B, P>(s, Mp, a.w, a.bias, a.scales, prow, row, ow, M, flo, fhi, a.y_zp, yrow + static_cast<size_t>(ow) * M);
      for (; ow < OW; ++ow)
        pixels<B, 1>(s, Mp, a.w, a.bias, a.scales, prow, row, ow, M, flo, fhi, a.y_zp, yrow + static_cast<size_t>(ow) * M);
    }
  }
}

}  // namespace

void direct_conv_neon(const DirectConvArgs& a) {
  switch (a.Mp / 8) {  // Mp is a multiple of 8 up to 32: 2, 4, 6 or 8 blocks of 4
    case 1: run<2>(a); break;
    case 2: run<4>(a); break;
    case 3: run<6>(a); break;
    default: run<8>(a); break;
  }
}

}  // namespace edge::kernels
#endif

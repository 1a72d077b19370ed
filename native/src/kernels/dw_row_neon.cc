// Depthwise 3x3 and 5x5 along an output row with NEON (DwRowArgs, variant_table.h), used by
// the NEON and dot-product tables. Eight channels per step: each input vector is widened to int16 once
// and multiplied into every output pixel that reads it (vmlal_s16 into two int32x4 per pixel,
// exact: |x * w| <= 255 * 128); four output pixels share the loads. The sums are finished by
// finish_row_neon; the last C % 8 channels are summed one by one and finished the same way.
#include "kernels/variant_table.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include "kernels/neon_finish.h"

namespace edge::kernels {
namespace {

template <int KS, int SW, int G>
inline void pixels(const DwRowArgs& a, int c, int p, const int16x8_t (&w)[KS * KS], uint8x8_t xr) {
  int32x4_t lo[G], hi[G];
  #pragma GCC unroll 4
  for (int g = 0; g < G; ++g) lo[g] = hi[g] = vdupq_n_s32(0);
  const size_t C = static_cast<size_t>(a.C);
  #pragma GCC unroll 5
  for (int ky = 0; ky < KS; ++ky) {
    const uint8_t* r = a.rows[ky] + static_cast<size_t>(p) * SW * C + c;
    #pragma GCC unroll 11
    for (int i = 0; i < (G - 1) * SW + KS; ++i) {
      const int16x8_t xe = vreinterpretq_s16_u16(vmovl_u8(veor_u8(vld1_u8(r + i * C), xr)));
      #pragma GCC unroll 5
      for (int kx = 0; kx < KS; ++kx) {
        const int j = i - kx;
        if (j >= 0 && j % SW == 0 && j / SW < G) {
          lo[j / SW] = vmlal_s16(lo[j / SW], vget_low_s16(xe), vget_low_s16(w[ky * KS + kx]));
          hi[j / SW] = vmlal_high_s16(hi[j / SW], xe, w[ky * KS + kx]);
        }
      }
    }
  }
  const OutputSpec& out = *a.out;
  const size_t es = out.kind == OutputSpec::Kind::Int32 ? 4 : 1;
  const float* sc = out.scales + (out.scale_count > 1 ? c : 0);
  #pragma GCC unroll 4
  for (int g = 0; g < G; ++g) {
    int32_t raw[8];
    vst1q_s32(raw, lo[g]);
    vst1q_s32(raw + 4, hi[g]);
    finish_row_neon(raw, 8, a.colterm + c, nullptr, 0, out, sc, static_cast<uint8_t*>(a.y) + (static_cast<size_t>(p + g) * C + c) * es);
  }
}

template <int KS, int SW>
void run(const DwRowArgs& a, int c, const int16x8_t (&w)[KS * KS], uint8x8_t xr) {
  int p = 0;
  for (; p + 4 <= a.count; p += 4) pixels<KS, SW, 4>(a, c, p, w, xr);
  for (; p + 2 <= a.count; p += 2) pixels<KS, SW, 2>(a, c, p, w, xr);
  for (; p < a.count; ++p) pixels<KS, SW, 1>(a, c, p, w, xr);
}

template <int KS>
int blocks(const DwRowArgs& a, int c_end, uint8x8_t xr) {
  const int C = a.C;
  int c = a.c_begin;
  for (; c + 8 <= c_end; c += 8) {
    int16x8_t w[KS * KS];
    for (int t = 0; t < KS * KS; ++t) {
      const int32_t* wt = a.w + static_cast<size_t>(t) * C + c;
      w[t] = vcombine_s16(vmovn_s32(vld1q_s32(wt)), vmovn_s32(vld1q_s32(wt + 4)));
    }
    if (a.stride == 1) run<KS, 1>(a, c, w, xr);
    else run<KS, 2>(a, c, w, xr);
  }
  return c;
}

}  // namespace

void dw_row_neon(const DwRowArgs& a) {
  const OutputSpec& out = *a.out;
  const int C = a.C;
  const size_t es = out.kind == OutputSpec::Kind::Int32 ? 4 : 1;
  const uint8x8_t xr = vdup_n_u8(a.x_xor);
  const int c_end = a.c_end < 0 ? C : a.c_end;
  const int c = a.ks == 5 ? blocks<5>(a, c_end, xr) : blocks<3>(a, c_end, xr);
  if (c == c_end) return;
  const int ks = a.ks, taps = ks * ks;
  const int n = c_end - c;
  const float* sc = out.scales + (out.scale_count > 1 ? c : 0);
  for (int p = 0; p < a.count; ++p) {
    int32_t raw[8];
    for (int j = 0; j < n; ++j) {
      int32_t s = 0;
      for (int t = 0; t < taps; ++t)
        s += static_cast<int32_t>(a.rows[t / ks][(static_cast<size_t>(p) * a.stride + t % ks) * C + c + j] ^ a.x_xor) *
             a.w[static_cast<size_t>(t) * C + c + j];
      raw[j] = s;
    }
    finish_row_neon(raw, n, a.colterm + c, nullptr, 0, out, sc, static_cast<uint8_t*>(a.y) + (static_cast<size_t>(p) * C + c) * es);
  }
}

}  // namespace edge::kernels
#endif

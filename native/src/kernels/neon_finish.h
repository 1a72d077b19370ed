#pragma once
// Internal, aarch64 only: NEON row finisher and depthwise accumulation shared by the NEON and
// dot-product variants (internal linkage; see x86_finish.h for why).
#include <arm_neon.h>

#include "kernels/variant_table.h"

namespace edge::kernels {
namespace {

void finish_row_neon(const int32_t* raw, int n, const int32_t* colterm, const int32_t* zb, int32_t rowsum,
                     const OutputSpec& out, const float* scales, void* y) {
  const bool pc = out.scale_count > 1;
  const size_t es = out.kind == OutputSpec::Kind::Int32 ? 4 : 1;
  const int32x4_t rs = vdupq_n_s32(rowsum);
  const float32x4_t lo = vdupq_n_f32(static_cast<float>(out.clamp_min - out.zero_point));
  const float32x4_t hi = vdupq_n_f32(static_cast<float>(out.clamp_max - out.zero_point));
  const int32x4_t zp = vdupq_n_s32(out.zero_point);
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    int32x4_t v0 = vaddq_s32(vld1q_s32(raw + j), vld1q_s32(colterm + j));
    int32x4_t v1 = vaddq_s32(vld1q_s32(raw + j + 4), vld1q_s32(colterm + j + 4));
    if (zb) {
      v0 = vmlsq_s32(v0, vld1q_s32(zb + j), rs);
      v1 = vmlsq_s32(v1, vld1q_s32(zb + j + 4), rs);
    }
    if (out.kind == OutputSpec::Kind::Int32) {
      vst1q_s32(static_cast<int32_t*>(y) + j, v0);
      vst1q_s32(static_cast<int32_t*>(y) + j + 4, v1);
      continue;
    }
    const float32x4_t s0 = pc ? vld1q_f32(scales + j) : vdupq_n_f32(scales[0]);
    const float32x4_t s1 = pc ? vld1q_f32(scales + j + 4) : vdupq_n_f32(scales[0]);
    float32x4_t f0 = vminq_f32(vmaxq_f32(vmulq_f32(vcvtq_f32_s32(v0), s0), lo), hi);
    float32x4_t f1 = vminq_f32(vmaxq_f32(vmulq_f32(vcvtq_f32_s32(v1), s1), lo), hi);
    int32x4_t q0 = vaddq_s32(vcvtnq_s32_f32(f0), zp), q1 = vaddq_s32(vcvtnq_s32_f32(f1), zp);
    int16x8_t w = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1));
    if (out.kind == OutputSpec::Kind::U8) vst1_u8(static_cast<uint8_t*>(y) + j, vqmovun_s16(w));
    else vst1_s8(static_cast<int8_t*>(y) + j, vqmovn_s16(w));
  }
  if (j < n)
    finish_row_scalar(raw + j, n - j, colterm + j, zb ? zb + j : nullptr, rowsum, out, scales + (pc ? j : 0),
                      static_cast<uint8_t*>(y) + j * es);
}

// microkernel_q's output stage: finish_row_neon's operations on the sums c[r][v] (columns
// 4v..4v+3 of row r, v < nvec) still in registers.
template <int MR, int NV>
inline void fused_finish_neon(const int32x4_t (&c)[MR][NV], int nvec, const FusedFinish& f) {
  const OutputSpec& out = *f.out;
  const float32x4_t lo = vdupq_n_f32(static_cast<float>(out.clamp_min - out.zero_point));
  const float32x4_t hi = vdupq_n_f32(static_cast<float>(out.clamp_max - out.zero_point));
  const int32x4_t zp = vdupq_n_s32(out.zero_point);
  const bool u8 = out.kind == OutputSpec::Kind::U8;
  #pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    const int left = f.valid - v * 4;
    if (v >= nvec || left <= 0) break;
    const int32x4_t ct = vld1q_s32(f.colterm + v * 4);
    // The scales hold only the valid columns (colterm and zb are padded to the panel width).
    float32x4_t s = vdupq_n_f32(f.scales[0]);
    if (f.per_channel) {
      if (left >= 4) {
        s = vld1q_f32(f.scales + v * 4);
      } else {
        float part[4] = {0, 0, 0, 0};
        for (int i = 0; i < left; ++i) part[i] = f.scales[v * 4 + i];
        s = vld1q_f32(part);
      }
    }
    const int32x4_t zb = f.zb ? vld1q_s32(f.zb + v * 4) : vdupq_n_s32(0);
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      int32x4_t x = vaddq_s32(c[r][v], ct);
      if (f.zb) x = vmlsq_s32(x, zb, vdupq_n_s32(f.rowsum[r]));
      const float32x4_t y = vminq_f32(vmaxq_f32(vmulq_f32(vcvtq_f32_s32(x), s), lo), hi);
      const int16x4_t q = vmovn_s32(vaddq_s32(vcvtnq_s32_f32(y), zp));
      const int16x8_t w = vcombine_s16(q, q);
      const uint8x8_t b = u8 ? vqmovun_s16(w) : vreinterpret_u8_s8(vqmovn_s16(w));
      uint8_t* dst = f.y + r * f.ldy + v * 4;
      if (left >= 4) {
        vst1_lane_u32(reinterpret_cast<uint32_t*>(dst), vreinterpret_u32_u8(b), 0);
      } else {
        uint8_t tmp[8];
        vst1_u8(tmp, b);
        for (int j = 0; j < left; ++j) dst[j] = tmp[j];
      }
    }
  }
}

void dw_pixel_neon(const uint8_t* const* x, int taps, const int16_t* w, int C, uint8_t x_xor, int32_t* acc) {
  const uint8x8_t xr = vdup_n_u8(x_xor);
  int c = 0;
  for (; c + 8 <= C; c += 8) {
    int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
    for (int t = 0; t < taps; t += 2) {
      const int16x8_t x0 = vreinterpretq_s16_u16(vmovl_u8(veor_u8(vld1_u8(x[t] + c), xr)));
      const int16x8_t x1 = vreinterpretq_s16_u16(vmovl_u8(veor_u8(vld1_u8(x[t + 1] + c), xr)));
      const int16x8x2_t wv = vld2q_s16(w + (static_cast<size_t>(t / 2) * C + c) * 2);  // de-interleaves the pair
      lo = vmlal_s16(lo, vget_low_s16(x0), vget_low_s16(wv.val[0]));
      hi = vmlal_high_s16(hi, x0, wv.val[0]);
      lo = vmlal_s16(lo, vget_low_s16(x1), vget_low_s16(wv.val[1]));
      hi = vmlal_high_s16(hi, x1, wv.val[1]);
    }
    vst1q_s32(acc + c, lo);
    vst1q_s32(acc + c + 4, hi);
  }
  for (; c < C; ++c) {
    int32_t s = 0;
    for (int t = 0; t < taps; ++t) s += static_cast<int32_t>(x[t][c] ^ x_xor) * w[(static_cast<size_t>(t / 2) * C + c) * 2 + t % 2];
    acc[c] = s;
  }
}

}  // namespace
}  // namespace edge::kernels

// NEON quantization of the float graph input (quantize.h quantize_u8_strided), 4 values per
// step, also used by the dot-product variant: divide, clamp to [-zp, 255 - zp], vcvtnq (round
// half to even), add zp, narrow (exact: values are in [0, 255]).
#include "kernels/variant_table.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

namespace edge::kernels {
namespace {
inline uint32_t quantize4(float32x4_t v, float32x4_t vs, float32x4_t vlo, float32x4_t vhi, int32x4_t vzp) {
  v = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), vceqq_f32(v, v)));  // NaN -> 0 -> zero point
  v = vminq_f32(vmaxq_f32(vdivq_f32(v, vs), vlo), vhi);
  const int32x4_t r = vaddq_s32(vcvtnq_s32_f32(v), vzp);
  const uint16x4_t h = vqmovun_s32(r);
  const uint8x8_t b = vqmovn_u16(vcombine_u16(h, h));
  return vget_lane_u32(vreinterpret_u32_u8(b), 0);
}
}  // namespace

void quantize_u8_neon(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride) {
  const float32x4_t vs = vdupq_n_f32(scale);
  const float32x4_t vlo = vdupq_n_f32(static_cast<float>(-zp)), vhi = vdupq_n_f32(static_cast<float>(255 - zp));
  const int32x4_t vzp = vdupq_n_s32(zp);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32_t b4 = quantize4(vld1q_f32(x + i), vs, vlo, vhi, vzp);
    if (y_stride == 1) {
      std::memcpy(y + i, &b4, 4);
      continue;
    }
    uint8_t q[4];
    std::memcpy(q, &b4, 4);
    for (int k = 0; k < 4; ++k) y[(i + k) * y_stride] = q[k];
  }
  if (i < n) {  // the tail through a zero-padded copy, with the same operations
    float t[4] = {0, 0, 0, 0};
    std::memcpy(t, x + i, sizeof(float) * (n - i));
    const uint32_t b4 = quantize4(vld1q_f32(t), vs, vlo, vhi, vzp);
    uint8_t q[4];
    std::memcpy(q, &b4, 4);
    for (size_t k = 0; k < n - i; ++k) y[(i + k) * y_stride] = q[k];
  }
}

void quantize_u8_planes3_neon(const float* const planes[3], size_t n, float scale, int32_t zp, uint8_t* y) {
  const float32x4_t vs = vdupq_n_f32(scale);
  const float32x4_t vlo = vdupq_n_f32(static_cast<float>(-zp)), vhi = vdupq_n_f32(static_cast<float>(255 - zp));
  const int32x4_t vzp = vdupq_n_s32(zp);
  // 16 values of a plane as 16 bytes, each group of 4 as quantize_u8_neon does it.
  const auto q16 = [&](const float* x) {
    uint32_t w[4];
    for (int k = 0; k < 4; ++k) w[k] = quantize4(vld1q_f32(x + 4 * k), vs, vlo, vhi, vzp);
    return vreinterpretq_u8_u32(vld1q_u32(w));
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint8x16x3_t v;
    v.val[0] = q16(planes[0] + i);
    v.val[1] = q16(planes[1] + i);
    v.val[2] = q16(planes[2] + i);
    vst3q_u8(y + 3 * i, v);  // stores them interleaved: r0 g0 b0 r1 g1 b1 ...
  }
  for (int c = 0; c < 3; ++c) quantize_u8_neon(planes[c] + i, n - i, scale, zp, y + 3 * i + c, 3);
}

}  // namespace edge::kernels
#endif

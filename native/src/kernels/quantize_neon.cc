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

}  // namespace edge::kernels
#endif

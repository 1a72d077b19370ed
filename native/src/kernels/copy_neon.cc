// NEON requantization of u8 rows (copy.h requantize_u8_row), 16 bytes per step, also used by
// the dot-product variant: widen, subtract the zero point, convert, multiply, divide, vcvtnq
// (round half to even), add the zero point, narrow with saturation; the scalar float32
// operations, so the same bytes.
#include "kernels/copy.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

namespace edge::kernels {
namespace {

inline int32x4_t requant4(uint16x4_t v, int32x4_t vin_zp, float32x4_t vin, float32x4_t vout, int32x4_t vout_zp) {
  const int32x4_t q = vsubq_s32(vreinterpretq_s32_u32(vmovl_u16(v)), vin_zp);
  const float32x4_t f = vmulq_f32(vcvtq_f32_s32(q), vin);
  return vaddq_s32(vcvtnq_s32_f32(vdivq_f32(f, vout)), vout_zp);
}

void requant_row_neon(const uint8_t* x, size_t n, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp, uint8_t* y) {
  const int32x4_t vin_zp = vdupq_n_s32(in_zp), vout_zp = vdupq_n_s32(out_zp);
  const float32x4_t vin = vdupq_n_f32(in_scale), vout = vdupq_n_f32(out_scale);
  auto block16 = [&](const uint8_t* src, uint8_t* dst) {
    const uint8x16_t b = vld1q_u8(src);
    const uint16x8_t lo = vmovl_u8(vget_low_u8(b)), hi = vmovl_u8(vget_high_u8(b));
    const int32x4_t r0 = requant4(vget_low_u16(lo), vin_zp, vin, vout, vout_zp);
    const int32x4_t r1 = requant4(vget_high_u16(lo), vin_zp, vin, vout, vout_zp);
    const int32x4_t r2 = requant4(vget_low_u16(hi), vin_zp, vin, vout, vout_zp);
    const int32x4_t r3 = requant4(vget_high_u16(hi), vin_zp, vin, vout, vout_zp);
    const int16x8_t s0 = vcombine_s16(vqmovn_s32(r0), vqmovn_s32(r1));
    const int16x8_t s1 = vcombine_s16(vqmovn_s32(r2), vqmovn_s32(r3));
    vst1q_u8(dst, vcombine_u8(vqmovun_s16(s0), vqmovun_s16(s1)));
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) block16(x + i, y + i);
  if (i < n) {
    uint8_t t[16] = {0};
    uint8_t o[16];
    std::memcpy(t, x + i, n - i);
    block16(t, o);
    std::memcpy(y + i, o, n - i);
  }
}

}  // namespace

RequantRowFn requantize_u8_row_neon() { return requant_row_neon; }

}  // namespace edge::kernels
#else
namespace edge::kernels {
RequantRowFn requantize_u8_row_neon() { return nullptr; }
}  // namespace edge::kernels
#endif

// The NEON dot-product row of qmatmul.h: widening int16 multiply-accumulate (vmlal_s16) into
// int32 lanes; each product is at most 255 * 255, so the lanes hold the exact sum.
#include "kernels/qmatmul.h"

#if defined(__aarch64__)
#include <arm_neon.h>

namespace edge::kernels {

void qdot_row_neon(const int16_t* a, const int16_t* bt, size_t ldb, int K, int N, int32_t* acc) {
  int n = 0;
  for (; n + 2 <= N; n += 2) {
    const int16_t* b0 = bt + static_cast<size_t>(n) * ldb;
    const int16_t* b1 = b0 + ldb;
    int32x4_t s0 = vdupq_n_s32(0), s1 = s0, t0 = s0, t1 = s0;
    for (int k = 0; k < K; k += 8) {
      const int16x8_t av = vld1q_s16(a + k);
      const int16x8_t x0 = vld1q_s16(b0 + k), x1 = vld1q_s16(b1 + k);
      s0 = vmlal_s16(s0, vget_low_s16(av), vget_low_s16(x0));
      t0 = vmlal_high_s16(t0, av, x0);
      s1 = vmlal_s16(s1, vget_low_s16(av), vget_low_s16(x1));
      t1 = vmlal_high_s16(t1, av, x1);
    }
    acc[n] = vaddvq_s32(vaddq_s32(s0, t0));
    acc[n + 1] = vaddvq_s32(vaddq_s32(s1, t1));
  }
  for (; n < N; ++n) {
    const int16_t* b0 = bt + static_cast<size_t>(n) * ldb;
    int32x4_t s0 = vdupq_n_s32(0), t0 = s0;
    for (int k = 0; k < K; k += 8) {
      const int16x8_t av = vld1q_s16(a + k), x0 = vld1q_s16(b0 + k);
      s0 = vmlal_s16(s0, vget_low_s16(av), vget_low_s16(x0));
      t0 = vmlal_high_s16(t0, av, x0);
    }
    acc[n] = vaddvq_s32(vaddq_s32(s0, t0));
  }
}

}  // namespace edge::kernels
#endif

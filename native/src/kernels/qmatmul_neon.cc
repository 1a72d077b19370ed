// The NEON dot-product row of qmatmul.h: B's k-pairs de-interleaved with vld2q_s16, then a
// widening multiply-accumulate by A's two values (vmlal_n_s16) into int32 lanes; each product
// is at most 255 * 255, so the lanes hold the exact sum.
#include "kernels/qmatmul.h"

#if defined(__aarch64__)
#include <arm_neon.h>

namespace edge::kernels {

void qdot_row_neon(const int16_t* a, const int16_t* bp, int Kp, int Np, int32_t* acc) {
  const size_t stride = static_cast<size_t>(Np) * 2;
  for (int n = 0; n < Np; n += 8) {
    int32x4_t lo = vdupq_n_s32(0), hi = lo;
    const int16_t* b = bp + static_cast<size_t>(n) * 2;
    for (int p = 0; p < Kp / 2; ++p, b += stride) {
      const int16x8x2_t v = vld2q_s16(b);  // val[0]: k = 2p for 8 columns, val[1]: k = 2p + 1
      const int16_t a0 = a[2 * p], a1 = a[2 * p + 1];
      lo = vmlal_n_s16(lo, vget_low_s16(v.val[0]), a0);
      hi = vmlal_high_n_s16(hi, v.val[0], a0);
      lo = vmlal_n_s16(lo, vget_low_s16(v.val[1]), a1);
      hi = vmlal_high_n_s16(hi, v.val[1], a1);
    }
    vst1q_s32(acc + n, lo);
    vst1q_s32(acc + n + 4, hi);
  }
}

}  // namespace edge::kernels
#endif

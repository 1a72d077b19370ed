// NEON 2x2 max pooling (pool.h max_pool_2x2), also used by the dot-product variant: per output
// pixel, the maximum of four channel rows, 16 channels per step (then 8, single bytes).
#include "kernels/variant_table.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include "kernels/pool.h"

namespace edge::kernels {

void max_pool_2x2_neon(const PoolShape& s, const uint8_t* x, uint8_t* y) {
  const int OH = s.H / 2, OW = s.W / 2, C = s.C;  // out_h(), out_w() for this shape
  const size_t row = static_cast<size_t>(s.W) * C;
  for (int n = 0; n < s.batch; ++n) {
    const uint8_t* xn = x + static_cast<size_t>(n) * s.H * row;
    for (int oh = 0; oh < OH; ++oh) {
      const uint8_t* r0 = xn + static_cast<size_t>(2 * oh) * row;
      const uint8_t* r1 = r0 + row;
      uint8_t* out = y + (static_cast<size_t>(n) * OH + oh) * OW * C;
      for (int ow = 0; ow < OW; ++ow) {
        const uint8_t* a = r0 + static_cast<size_t>(2 * ow) * C;
        const uint8_t* b = r1 + static_cast<size_t>(2 * ow) * C;
        uint8_t* o = out + static_cast<size_t>(ow) * C;
        int c = 0;
        for (; c + 16 <= C; c += 16) {
          const uint8x16_t m0 = vmaxq_u8(vld1q_u8(a + c), vld1q_u8(a + c + C));
          const uint8x16_t m1 = vmaxq_u8(vld1q_u8(b + c), vld1q_u8(b + c + C));
          vst1q_u8(o + c, vmaxq_u8(m0, m1));
        }
        for (; c + 8 <= C; c += 8) {
          const uint8x8_t m0 = vmax_u8(vld1_u8(a + c), vld1_u8(a + c + C));
          const uint8x8_t m1 = vmax_u8(vld1_u8(b + c), vld1_u8(b + c + C));
          vst1_u8(o + c, vmax_u8(m0, m1));
        }
        for (; c < C; ++c) {
          const uint8_t m0 = a[c] > a[c + C] ? a[c] : a[c + C];
          const uint8_t m1 = b[c] > b[c + C] ? b[c] : b[c + C];
          o[c] = m0 > m1 ? m0 : m1;
        }
      }
    }
  }
}

}  // namespace edge::kernels
#endif

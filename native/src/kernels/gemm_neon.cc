// ARMv8 NEON variant (Cortex-A72, Raspberry Pi 4). Without dot-product instructions the exact
// way is 16-bit widening, as XNNPACK's qu8 "mlal-lane" kernels do: activations uint8 -> int16,
// weights int8 -> int16, and vmlal_lane_s16 accumulates int16 x int16 products into int32.
// Micro-kernel: up to 4 rows x 16 columns (16 int32x4 accumulators), 8 k per step.
#include "kernels/variant_table.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "kernels/neon_finish.h"

namespace edge::kernels {
namespace {

template <int MR, bool FIN = false>
void kernel(const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor, int32_t* acc,
            bool accumulate, const FusedFinish* f = nullptr) {
  // width is 8 or 16; for 8 the second half of each accumulator row stays unused.
  int32x4_t c[MR][4];
  const bool wide = width == 16;
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < 4; ++v)
      c[r][v] = accumulate && v < (wide ? 4 : 2) ? vld1q_s32(acc + r * width + v * 4) : vdupq_n_s32(0);
  const uint8x8_t xr = vdup_n_u8(a_xor);
  const int8_t* b = panel;
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    int16x8_t av[MR];
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) av[r] = vreinterpretq_s16_u16(vmovl_u8(veor_u8(vld1_u8(a + r * lda + k), xr)));
#define EDGE_STEP(L, HALF, LANE)                                                             \
  {                                                                                          \
    int16x8_t b0, b1 = vdupq_n_s16(0);                                                       \
    if (wide) {                                                                              \
      const int8x16_t bb = vld1q_s8(b + (L) * 16);                                           \
      b0 = vmovl_s8(vget_low_s8(bb));                                                        \
      b1 = vmovl_high_s8(bb);                                                                \
    } else {                                                                                 \
      b0 = vmovl_s8(vld1_s8(b + (L) * 8));                                                   \
    }                                                                                        \
    _Pragma("GCC unroll 16") \
    for (int r = 0; r < MR; ++r) {                                                           \
      const int16x4_t ah = HALF(av[r]);                                                      \
      c[r][0] = vmlal_lane_s16(c[r][0], vget_low_s16(b0), ah, LANE);                         \
      c[r][1] = vmlal_high_lane_s16(c[r][1], b0, ah, LANE);                                  \
      if (wide) {                                                                            \
        c[r][2] = vmlal_lane_s16(c[r][2], vget_low_s16(b1), ah, LANE);                       \
        c[r][3] = vmlal_high_lane_s16(c[r][3], b1, ah, LANE);                                \
      }                                                                                      \
    }                                                                                        \
  }
    EDGE_STEP(0, vget_low_s16, 0)
    EDGE_STEP(1, vget_low_s16, 1)
    EDGE_STEP(2, vget_low_s16, 2)
    EDGE_STEP(3, vget_low_s16, 3)
    EDGE_STEP(4, vget_high_s16, 0)
    EDGE_STEP(5, vget_high_s16, 1)
    EDGE_STEP(6, vget_high_s16, 2)
    EDGE_STEP(7, vget_high_s16, 3)
#undef EDGE_STEP
    b += 8 * width;
  }
  for (; k < K; ++k, b += width) {
    int16x8_t b0, b1 = vdupq_n_s16(0);
    if (wide) {
      const int8x16_t bb = vld1q_s8(b);
      b0 = vmovl_s8(vget_low_s8(bb));
      b1 = vmovl_high_s8(bb);
    } else {
      b0 = vmovl_s8(vld1_s8(b));
    }
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const int16_t av = static_cast<int16_t>(a[r * lda + k] ^ a_xor);
      c[r][0] = vmlal_n_s16(c[r][0], vget_low_s16(b0), av);
      c[r][1] = vmlal_high_n_s16(c[r][1], b0, av);
      if (wide) {
        c[r][2] = vmlal_n_s16(c[r][2], vget_low_s16(b1), av);
        c[r][3] = vmlal_high_n_s16(c[r][3], b1, av);
      }
    }
  }
  if constexpr (FIN) {
    fused_finish_neon<MR, 4>(c, wide ? 4 : 2, *f);
    return;
  }
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < (wide ? 4 : 2); ++v) vst1q_s32(acc + r * width + v * 4, c[r][v]);
}

void microkernel(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                 int32_t* acc, bool accumulate) {
  switch (rows) {
    case 1: kernel<1>(a, lda, K, panel, width, a_xor, acc, accumulate); break;
    case 2: kernel<2>(a, lda, K, panel, width, a_xor, acc, accumulate); break;
    case 3: kernel<3>(a, lda, K, panel, width, a_xor, acc, accumulate); break;
    default: kernel<4>(a, lda, K, panel, width, a_xor, acc, accumulate); break;
  }
}

// `acc` is only read (accumulate); the fused path never writes it.
void microkernel_q(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                   const int32_t* acc, bool accumulate, const FusedFinish& f) {
  int32_t* in = const_cast<int32_t*>(acc);
  switch (rows) {
    case 1: kernel<1, true>(a, lda, K, panel, width, a_xor, in, accumulate, &f); break;
    case 2: kernel<2, true>(a, lda, K, panel, width, a_xor, in, accumulate, &f); break;
    case 3: kernel<3, true>(a, lda, K, panel, width, a_xor, in, accumulate, &f); break;
    default: kernel<4, true>(a, lda, K, panel, width, a_xor, in, accumulate, &f); break;
  }
}

uint64_t peak_loop(uint64_t iters, int32_t* sink) {
  int32x4_t c[12];
  for (int i = 0; i < 12; ++i) c[i] = vdupq_n_s32(sink[i]);
  const int16x8_t b = vdupq_n_s16(static_cast<int16_t>(sink[12]));
  const int16x4_t a = vdup_n_s16(static_cast<int16_t>(sink[13]));
  for (uint64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; i += 2) {
      c[i] = vmlal_lane_s16(c[i], vget_low_s16(b), a, 1);
      c[i + 1] = vmlal_high_lane_s16(c[i + 1], b, a, 2);
    }
  }
  for (int i = 0; i < 12; ++i) sink[i] = vgetq_lane_s32(c[i], 0);
  return iters * 12 * 4 * 2;
}

const VariantKernels kTable = {
    Variant::Neon, /*nr=*/16, /*col_align=*/8, /*kgroup=*/1, /*mr=*/4, microkernel, /*a_flip=*/0,
    finish_row_neon, dw_pixel_neon, peak_loop,
    direct_conv_neon, quantize_u8_neon, max_pool_2x2_neon, /*dw_pixel_q8=*/nullptr, microkernel_q, dw_row_neon,
    /*eltwise=*/nullptr, /*quantize_u8_planes3=*/quantize_u8_planes3_neon,
};

}  // namespace
const VariantKernels* neon_kernels() { return &kTable; }
}  // namespace edge::kernels

#else
namespace edge::kernels {
const VariantKernels* neon_kernels() { return nullptr; }
}  // namespace edge::kernels
#endif

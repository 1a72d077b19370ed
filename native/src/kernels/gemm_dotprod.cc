// ARMv8.2 dot-product variant (Cortex-A76 in the Pi 5, Cortex-A78AE in Jetson Orin). SDOT
// multiplies signed by signed only (mixed-sign USDOT needs ARMv8.6 i8mm), so activations are
// flipped to int8 (a - 128, one eor per load) and the driver adds 128 * column sum back
// (VariantKernels::a_flip). Micro-kernel: up to 4 rows x 16 columns, 16 k per step; the panel
// holds, per group of 4 k, 16 columns x 4 bytes.
#include "kernels/variant_table.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>

#include <cstring>

#include "kernels/neon_finish.h"

namespace edge::kernels {
namespace {

template <int MR, int NV, bool FIN = false>
void kernel(const uint8_t* a, size_t lda, int K, const int8_t* panel, uint8_t a_xor, int32_t* acc, bool accumulate,
            const FusedFinish* f = nullptr) {
  constexpr int W = NV * 4;
  int32x4_t c[MR][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) c[r][v] = accumulate ? vld1q_s32(acc + r * W + v * 4) : vdupq_n_s32(0);
  const uint8x16_t flip = vdupq_n_u8(static_cast<uint8_t>(a_xor ^ 0x80));
  const int8_t* b = panel;
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    int8x16_t av[MR];
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) av[r] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + r * lda + k), flip));
#define EDGE_GROUP(G)                                                              \
  {                                                                                \
    _Pragma("GCC unroll 16") \
    for (int v = 0; v < NV; ++v) {                                                 \
      const int8x16_t bv = vld1q_s8(b + ((G) * W + v * 4) * 4);                    \
      _Pragma("GCC unroll 16") \
      for (int r = 0; r < MR; ++r) c[r][v] = vdotq_laneq_s32(c[r][v], bv, av[r], G); \
    }                                                                              \
  }
    EDGE_GROUP(0)
    EDGE_GROUP(1)
    EDGE_GROUP(2)
    EDGE_GROUP(3)
#undef EDGE_GROUP
    b += 4 * W * 4;
  }
  // Remaining k in groups of 4; bytes past K read as the flipped zero of padding (times zero weights).
  for (; k < K; k += 4, b += W * 4) {
    const int n = K - k < 4 ? K - k : 4;
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      uint8_t tmp[4] = {0, 0, 0, 0};
      std::memcpy(tmp, a + r * lda + k, n);
      uint32_t word;
      std::memcpy(&word, tmp, 4);
      word ^= 0x01010101u * static_cast<uint8_t>(a_xor ^ 0x80);
      const int8x16_t aw = vreinterpretq_s8_u32(vdupq_n_u32(word));
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) c[r][v] = vdotq_s32(c[r][v], vld1q_s8(b + v * 16), aw);
    }
  }
  if constexpr (FIN) {
    fused_finish_neon<MR, NV>(c, NV, *f);
    return;
  }
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) vst1q_s32(acc + r * W + v * 4, c[r][v]);
}

using KernelFn = void (*)(const uint8_t*, size_t, int, const int8_t*, uint8_t, int32_t*, bool, const FusedFinish*);
template <int MR, bool FIN>
constexpr KernelFn pick_nv(int nv) {
  return nv == 1 ? kernel<MR, 1, FIN> : nv == 2 ? kernel<MR, 2, FIN> : nv == 3 ? kernel<MR, 3, FIN> : kernel<MR, 4, FIN>;
}
template <bool FIN>
KernelFn pick(int rows, int nv) {
  return rows == 1 ? pick_nv<1, FIN>(nv) : rows == 2 ? pick_nv<2, FIN>(nv) : rows == 3 ? pick_nv<3, FIN>(nv) : pick_nv<4, FIN>(nv);
}

void microkernel(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                 int32_t* acc, bool accumulate) {
  pick<false>(rows, width / 4)(a, lda, K, panel, a_xor, acc, accumulate, nullptr);
}
// `acc` is only read (accumulate); the fused path never writes it.
void microkernel_q(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                   const int32_t* acc, bool accumulate, const FusedFinish& f) {
  pick<true>(rows, width / 4)(a, lda, K, panel, a_xor, const_cast<int32_t*>(acc), accumulate, &f);
}

uint64_t peak_loop(uint64_t iters, int32_t* sink) {
  int32x4_t c[12];
  for (int i = 0; i < 12; ++i) c[i] = vdupq_n_s32(sink[i]);
  const int8x16_t a = vdupq_n_s8(static_cast<int8_t>(sink[12])), b = vdupq_n_s8(static_cast<int8_t>(sink[13]));
  for (uint64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) c[i] = vdotq_s32(c[i], a, b);
  }
  for (int i = 0; i < 12; ++i) sink[i] = vgetq_lane_s32(c[i], 0);
  return iters * 12 * 16 * 2;
}

const VariantKernels kTable = {
    Variant::Dotprod, /*nr=*/16, /*col_align=*/4, /*kgroup=*/4, /*mr=*/4, microkernel, /*a_flip=*/128,
    finish_row_neon, dw_pixel_neon, peak_loop,
    direct_conv_neon, quantize_u8_neon, max_pool_2x2_neon, /*dw_pixel_q8=*/nullptr, microkernel_q, dw_row_neon,
    /*eltwise=*/nullptr, /*quantize_u8_planes3=*/quantize_u8_planes3_neon,
};

}  // namespace
const VariantKernels* dotprod_kernels() { return &kTable; }
}  // namespace edge::kernels

#else
namespace edge::kernels {
const VariantKernels* dotprod_kernels() { return nullptr; }
}  // namespace edge::kernels
#endif

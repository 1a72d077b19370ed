// AVX2 variant. vpmaddubsw (uint8 x int8 pairs summed into int16) saturates: 255 * -128 * 2
// does not fit in 16 bits, so ONNX Runtime's AVX2 u8s8 path can be off on such data. This
// kernel does what XNNPACK and ruy do instead: the int8 weights are sign-extended to int16
// (vpmovsxbw), activation pairs are zero-extended to int16, and vpmaddwd sums each pair of
// int16 products into int32 exactly. Micro-kernel: up to 4 rows x 16 columns; the panel
// holds, per pair of k, 16 columns x 2 bytes.
#include "kernels/variant_table.h"

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstring>

#include "kernels/x86_finish.h"

namespace edge::kernels {
namespace {

// Two activation bytes as the int16 pair (a0, a1) in one int32 lane.
inline int32_t pair(const uint8_t* p, uint32_t x2, bool both) {
  uint32_t a0 = p[0], a1 = both ? p[1] : 0;
  return static_cast<int32_t>(((a0 | (a1 << 16)) ^ x2));
}

template <int MR, int NV>
void kernel(const uint8_t* a, size_t lda, int K, const int8_t* panel, uint8_t a_xor, int32_t* acc, bool accumulate) {
  constexpr int W = NV * 8;
  __m256i c[MR][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      c[r][v] = accumulate ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + r * W + v * 8)) : _mm256_setzero_si256();
  // xor applies to real bytes only; the padding byte of an odd K stays zero.
  const uint32_t x2 = a_xor | (static_cast<uint32_t>(a_xor) << 16);
  const int pairs = (K + 1) / 2;
  const int8_t* b = panel;
  for (int g = 0; g < pairs; ++g, b += W * 2) {
    const bool both = 2 * g + 1 < K;
    __m256i bv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      bv[v] = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b + v * 16)));
    const uint32_t xx = both ? x2 : a_xor;
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(pair(a + r * lda + 2 * g, xx, both));
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) c[r][v] = _mm256_add_epi32(c[r][v], _mm256_madd_epi16(av, bv[v]));
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + r * W + v * 8), c[r][v]);
}

using KernelFn = void (*)(const uint8_t*, size_t, int, const int8_t*, uint8_t, int32_t*, bool);
template <int MR>
constexpr KernelFn pick_nv(int nv) { return nv == 1 ? kernel<MR, 1> : kernel<MR, 2>; }

void microkernel(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                 int32_t* acc, bool accumulate) {
  const int nv = width / 8;
  KernelFn f = rows == 1 ? pick_nv<1>(nv) : rows == 2 ? pick_nv<2>(nv) : rows == 3 ? pick_nv<3>(nv) : pick_nv<4>(nv);
  f(a, lda, K, panel, a_xor, acc, accumulate);
}

// The kernel's inner step: vpmaddwd (16 MACs) + vpaddd, in 12 independent chains.
uint64_t peak_loop(uint64_t iters, int32_t* sink) {
  __m256i c[12];
  for (int i = 0; i < 12; ++i) c[i] = _mm256_set1_epi32(sink[i]);
  const __m256i a = _mm256_set1_epi32(sink[12]), b = _mm256_set1_epi32(sink[13]);
  for (uint64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) c[i] = _mm256_add_epi32(c[i], _mm256_madd_epi16(a, b));
  }
  for (int i = 0; i < 12; ++i) sink[i] = _mm256_extract_epi32(c[i], 0);
  return iters * 12 * 16 * 2;
}

const VariantKernels kTable = {
    Variant::Avx2, /*nr=*/16, /*col_align=*/8, /*kgroup=*/2, /*mr=*/4, microkernel, /*a_flip=*/0,
    finish_row_avx2, dw_accumulate_avx2, dw_pixel_avx2, peak_loop,
};

}  // namespace
const VariantKernels* avx2_kernels() { return &kTable; }
}  // namespace edge::kernels

#else
namespace edge::kernels {
const VariantKernels* avx2_kernels() { return nullptr; }
}  // namespace edge::kernels
#endif

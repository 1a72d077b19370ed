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

template <int MR, int NV, bool XOR, bool FIN = false>
void kernel(const uint8_t* a, size_t lda, int K, const int8_t* panel, uint8_t a_xor, int32_t* acc, bool accumulate,
            const FusedFinish* f = nullptr) {
  constexpr int W = NV * 8;
  __m256i c[MR][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      c[r][v] = accumulate ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + r * W + v * 8)) : _mm256_setzero_si256();
  // Full pairs: broadcast the two bytes to every 16-bit lane (one load), xor, and zero-extend
  // them to the int16 pair (a0, a1) of each 32-bit lane with one unpack.
  const __m256i xr = _mm256_set1_epi8(static_cast<char>(a_xor));
  const __m256i zero = _mm256_setzero_si256();
  const int full = K / 2;
  const int8_t* b = panel;
  for (int g = 0; g < full; ++g, b += W * 2) {
    __m256i bv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      bv[v] = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b + v * 16)));
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      uint16_t two;
      std::memcpy(&two, a + r * lda + 2 * g, 2);
      __m256i bytes = _mm256_set1_epi16(static_cast<short>(two));
      if (XOR) bytes = _mm256_xor_si256(bytes, xr);
      const __m256i av = _mm256_unpacklo_epi8(bytes, zero);
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) c[r][v] = _mm256_add_epi32(c[r][v], _mm256_madd_epi16(av, bv[v]));
    }
  }
  if (K % 2) {  // odd K: the last pair has one real byte; its partner stays zero
    __m256i bv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      bv[v] = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b + v * 16)));
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(static_cast<int32_t>(a[r * lda + 2 * full] ^ a_xor));
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) c[r][v] = _mm256_add_epi32(c[r][v], _mm256_madd_epi16(av, bv[v]));
    }
  }
  if constexpr (FIN) {
    fused_finish_avx2<MR, NV>(c, *f);
    return;
  }
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + r * W + v * 8), c[r][v]);
}

using FusedFn = void (*)(const uint8_t*, size_t, int, const int8_t*, uint8_t, int32_t*, bool, const FusedFinish*);
template <int MR>
FusedFn pick_fused_nv(int nv, bool x) {
  return nv == 1 ? (x ? kernel<MR, 1, true, true> : kernel<MR, 1, false, true>)
                 : (x ? kernel<MR, 2, true, true> : kernel<MR, 2, false, true>);
}
// `acc` is only read (accumulate); the fused path never writes it.
void microkernel_q(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                   const int32_t* acc, bool accumulate, const FusedFinish& f) {
  const int nv = width / 8;
  const bool x = a_xor != 0;
  FusedFn fn;
  switch (rows) {
    case 1: fn = pick_fused_nv<1>(nv, x); break;
    case 2: fn = pick_fused_nv<2>(nv, x); break;
    case 3: fn = pick_fused_nv<3>(nv, x); break;
    case 4: fn = pick_fused_nv<4>(nv, x); break;
    default: fn = pick_fused_nv<4>(nv, x); break;
  }
  fn(a, lda, K, panel, a_xor, const_cast<int32_t*>(acc), accumulate, &f);
}

using KernelFn = void (*)(const uint8_t*, size_t, int, const int8_t*, uint8_t, int32_t*, bool, const FusedFinish*);
template <int MR>
KernelFn pick_nv(int nv, bool x) {
  return nv == 1 ? (x ? kernel<MR, 1, true> : kernel<MR, 1, false>) : (x ? kernel<MR, 2, true> : kernel<MR, 2, false>);
}

void microkernel(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                 int32_t* acc, bool accumulate) {
  const int nv = width / 8;
  const bool x = a_xor != 0;
  KernelFn f = rows == 1 ? pick_nv<1>(nv, x) : rows == 2 ? pick_nv<2>(nv, x) : rows == 3 ? pick_nv<3>(nv, x) : pick_nv<4>(nv, x);
  f(a, lda, K, panel, a_xor, acc, accumulate, nullptr);
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
    finish_row_avx2, dw_pixel_avx2, peak_loop,
    direct_conv_avx2, quantize_u8_avx2, max_pool_2x2_avx2, /*dw_pixel_q8=*/nullptr, microkernel_q, dw_row_avx2,
    /*eltwise=*/eltwise_avx2, /*quantize_u8_planes3=*/quantize_u8_planes3_avx2, /*kblock=*/kX86KBlock,
};

}  // namespace
const VariantKernels* avx2_kernels() { return &kTable; }
}  // namespace edge::kernels

#else
namespace edge::kernels {
const VariantKernels* avx2_kernels() { return nullptr; }
}  // namespace edge::kernels
#endif

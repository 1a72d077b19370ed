// AVX-VNNI variant (VEX-encoded vpdpbusd on 256-bit registers, Alder Lake and later; 16
// registers): exact uint8 x int8 dot products of 4 into int32 like the AVX-512 variant.
// Micro-kernel: up to 6 rows x 16 columns (12 ymm accumulators).
#include "kernels/variant_table.h"

#if defined(__AVXVNNI__) && defined(__AVX2__)
#include <immintrin.h>

#include <cstring>

#include "kernels/x86_finish.h"

namespace edge::kernels {
namespace {

inline uint32_t load_n(const uint8_t* p, int n) {
  uint32_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}
// The last, partial group of a row with K >= 4: the row's last four bytes, shifted down so the
// `n` bytes of the group come first and zeros follow (a variable-length copy compiled to a byte
// loop through memory per row, a quarter of the 320x320x3 stem's time, K = 27).
inline uint32_t load_end(const uint8_t* p, int n) {
  uint32_t v;
  std::memcpy(&v, p + n - 4, 4);
  return v >> (8 * (4 - n));
}

template <int MR, int NV, bool XOR, bool FIN = false>
void kernel(const uint8_t* a, size_t lda, int K, const int8_t* panel, uint8_t a_xor, int32_t* acc, bool accumulate,
            const FusedFinish* f = nullptr) {
  constexpr int W = NV * 8;
  __m256i c[MR][NV], c2[NV];
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      c[r][v] = accumulate ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + r * W + v * 8)) : _mm256_setzero_si256();
  #pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) c2[v] = _mm256_setzero_si256();
  const uint32_t x4 = 0x01010101u * a_xor;
  const int groups = K / 4, tail = K % 4;
  const int8_t* b = panel;
  int g = 0;
  if (MR == 1) {
    for (; g + 2 <= groups; g += 2, b += 2 * W * 4) {
      const __m256i a0 = _mm256_set1_epi32(static_cast<int>(load_n(a + 4 * g, 4) ^ (XOR ? x4 : 0)));
      const __m256i a1 = _mm256_set1_epi32(static_cast<int>(load_n(a + 4 * g + 4, 4) ^ (XOR ? x4 : 0)));
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        c[0][v] = _mm256_dpbusd_avx_epi32(c[0][v], a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(b + v * 32)));
        c2[v] = _mm256_dpbusd_avx_epi32(c2[v], a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(b + W * 4 + v * 32)));
      }
    }
  }
  // Full groups read 4 bytes at once; only the last, partial group copies byte by byte (a
  // variable-length copy in the main loop would stall on store forwarding).
  for (; g < groups + (tail ? 1 : 0); ++g, b += W * 4) {
    const bool full = g < groups;
    __m256i bv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + v * 32));
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const uint32_t word = full ? load_n(a + r * lda + 4 * g, 4)
                            : groups > 0 ? load_end(a + r * lda + 4 * g, tail) : load_n(a + r * lda + 4 * g, tail);
      const __m256i av = _mm256_set1_epi32(static_cast<int>(XOR ? word ^ x4 : word));
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) c[r][v] = _mm256_dpbusd_avx_epi32(c[r][v], av, bv[v]);
    }
  }
  if (MR == 1)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) c[0][v] = _mm256_add_epi32(c[0][v], c2[v]);
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
    case 5: fn = pick_fused_nv<5>(nv, x); break;
    default: fn = pick_fused_nv<6>(nv, x); break;
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
  KernelFn f;
  switch (rows) {
    case 1: f = pick_nv<1>(nv, a_xor != 0); break;
    case 2: f = pick_nv<2>(nv, a_xor != 0); break;
    case 3: f = pick_nv<3>(nv, a_xor != 0); break;
    case 4: f = pick_nv<4>(nv, a_xor != 0); break;
    case 5: f = pick_nv<5>(nv, a_xor != 0); break;
    default: f = pick_nv<6>(nv, a_xor != 0); break;
  }
  f(a, lda, K, panel, a_xor, acc, accumulate, nullptr);
}

uint64_t peak_loop(uint64_t iters, int32_t* sink) {
  __m256i c[12];
  for (int i = 0; i < 12; ++i) c[i] = _mm256_set1_epi32(sink[i]);
  const __m256i a = _mm256_set1_epi32(sink[12]), b = _mm256_set1_epi32(sink[13]);
  for (uint64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) c[i] = _mm256_dpbusd_avx_epi32(c[i], a, b);
  }
  for (int i = 0; i < 12; ++i) sink[i] = _mm256_extract_epi32(c[i], 0);
  return iters * 12 * 32 * 2;
}

const VariantKernels kTable = {
    Variant::AvxVnni, /*nr=*/16, /*col_align=*/8, /*kgroup=*/4, /*mr=*/6, microkernel, /*a_flip=*/0,
    finish_row_avx2, dw_pixel_avx2, peak_loop,
    direct_conv_avx2, quantize_u8_avx2, max_pool_2x2_avx2, /*dw_pixel_q8=*/nullptr, microkernel_q, dw_row_avx2,
    /*eltwise=*/eltwise_avx2, /*quantize_u8_planes3=*/quantize_u8_planes3_avx2, /*kblock=*/kX86KBlock,
};

}  // namespace
const VariantKernels* avxvnni_kernels() { return &kTable; }
}  // namespace edge::kernels

#else
namespace edge::kernels {
const VariantKernels* avxvnni_kernels() { return nullptr; }
}  // namespace edge::kernels
#endif

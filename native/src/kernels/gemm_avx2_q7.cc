// AVX2 micro-kernel for 7-bit weights (issue 18). vpmaddubsw multiplies uint8 activations by
// int8 weights and adds adjacent pairs into int16 with saturation; with every weight in
// [-64, 63] a pair is at most 255 * 64 * 2 = 32640 in magnitude, so it never saturates and the
// instruction is exact. vpmaddwd with ones then adds the two int16 pairs of each k-group of 4
// into int32 exactly: ONNX Runtime's AVX2 u8s8 scheme without its saturation error. Per row,
// 4 k and 8 columns this is vpmaddubsw + vpmaddwd + vpaddd on one broadcast activation word;
// the 8-bit AVX2 kernel (gemm_avx2.cc) needs 2 x (vpmaddwd + vpaddd) plus 2 broadcasts and 2
// unpacks (shared by the row's 16 columns). The multiply uops per MAC are the same; the adds
// and the activation widening are what go: measured 1.4x the 8-bit kernel's GEMM throughput
// (about 160 vs 115 GOPS at 1 thread on this machine's AVX2 path).
//
// Not a variant of its own: pack_gemm_weights() picks this table for the AVX2 variant when all
// weights lie in [-64, 63] (PackedWeights::narrow()); 8-bit layers keep the vpmaddwd kernel.
// Same panel width, column alignment and a_flip as the AVX2 table, so the driver's column
// terms and output stage are shared; the layout is the VNNI one: k-groups of 4 bytes per
// column, [k / 4][column][4]. Micro-kernel: up to 4 rows x 16 columns.
#include "kernels/variant_table.h"

#if defined(__AVX2__)
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

// c += sum over the 4 k of the group of a * b, exact for |b| <= 64.
inline __m256i madd_q7(__m256i c, __m256i a, __m256i b, __m256i ones) {
  return _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
}

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
  const __m256i ones = _mm256_set1_epi16(1);
  const uint32_t x4 = 0x01010101u * a_xor;
  const int groups = K / 4, tail = K % 4;
  const int8_t* b = panel;
  // Full groups read 4 bytes at once; only the last, partial group copies byte by byte (its
  // missing bytes are zero, and so are the packed weights past K).
  for (int g = 0; g < groups + (tail ? 1 : 0); ++g, b += W * 4) {
    const bool full = g < groups;
    __m256i bv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + v * 32));
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const uint32_t word = full ? load_n(a + r * lda + 4 * g, 4) : load_n(a + r * lda + 4 * g, tail);
      // Bytes past K (partial group) meet zero weights, whatever the xor makes of them.
      const __m256i av = _mm256_set1_epi32(static_cast<int>(XOR ? word ^ x4 : word));
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) c[r][v] = madd_q7(c[r][v], av, bv[v], ones);
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

using KernelFn = void (*)(const uint8_t*, size_t, int, const int8_t*, uint8_t, int32_t*, bool, const FusedFinish*);
template <int MR, bool FIN>
KernelFn pick_nv(int nv, bool x) {
  return nv == 1 ? (x ? kernel<MR, 1, true, FIN> : kernel<MR, 1, false, FIN>)
                 : (x ? kernel<MR, 2, true, FIN> : kernel<MR, 2, false, FIN>);
}
template <bool FIN>
KernelFn pick(int rows, int width, uint8_t a_xor) {
  const int nv = width / 8;
  const bool x = a_xor != 0;
  switch (rows) {
    case 1: return pick_nv<1, FIN>(nv, x);
    case 2: return pick_nv<2, FIN>(nv, x);
    case 3: return pick_nv<3, FIN>(nv, x);
    default: return pick_nv<4, FIN>(nv, x);
  }
}

// `acc` is only read (accumulate); the fused path never writes it.
void microkernel_q(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                   const int32_t* acc, bool accumulate, const FusedFinish& f) {
  pick<true>(rows, width, a_xor)(a, lda, K, panel, a_xor, const_cast<int32_t*>(acc), accumulate, &f);
}

void microkernel(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                 int32_t* acc, bool accumulate) {
  pick<false>(rows, width, a_xor)(a, lda, K, panel, a_xor, acc, accumulate, nullptr);
}

const VariantKernels kTable = {
    Variant::Avx2, /*nr=*/16, /*col_align=*/8, /*kgroup=*/4, /*mr=*/4, microkernel, /*a_flip=*/0,
    finish_row_avx2, dw_pixel_avx2, /*peak_loop=*/nullptr,  // peak.cc measures the variants' own tables
    direct_conv_avx2, quantize_u8_avx2, max_pool_2x2_avx2, /*dw_pixel_q8=*/nullptr, microkernel_q,
    /*dw_row=*/nullptr, /*eltwise=*/eltwise_avx2, /*quantize_u8_planes3=*/quantize_u8_planes3_avx2, /*kblock=*/kX86KBlock,
};

}  // namespace
const VariantKernels* avx2_q7_kernels() { return &kTable; }
}  // namespace edge::kernels

#else
namespace edge::kernels {
const VariantKernels* avx2_q7_kernels() { return nullptr; }
}  // namespace edge::kernels
#endif

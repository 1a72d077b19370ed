#pragma once
// Internal, x86 only: vectorised row finishers (zero-point terms, bias, requantization,
// store), included by the AVX2/AVX-VNNI and AVX-512 files under their own flags. Everything
// here has internal linkage and uses no standard-library templates, so no code compiled with
// wider instructions can be merged into, and run from, the baseline build.
#include <immintrin.h>

#include "kernels/variant_table.h"

namespace edge::kernels {
namespace {

#if defined(__AVX2__)
// 8 lanes: y = requant(raw + colterm - zb * rowsum).
inline void finish8_avx2(const int32_t* raw, const int32_t* colterm, const int32_t* zb, __m256i rs, const OutputSpec& out,
                         const float* scales, bool per_channel, void* y) {
  __m256i v = _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(raw)),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(colterm)));
  if (zb) v = _mm256_sub_epi32(v, _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(zb)), rs));
  if (out.kind == OutputSpec::Kind::Int32) {
    _mm256_storeu_si256(static_cast<__m256i*>(y), v);
    return;
  }
  const __m256 s = per_channel ? _mm256_loadu_ps(scales) : _mm256_set1_ps(scales[0]);
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), s);
  f = _mm256_max_ps(f, _mm256_set1_ps(static_cast<float>(out.clamp_min - out.zero_point)));
  f = _mm256_min_ps(f, _mm256_set1_ps(static_cast<float>(out.clamp_max - out.zero_point)));
  __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), _mm256_set1_epi32(out.zero_point));
  // Values are inside the output range: pack with saturation is exact.
  __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  __m128i w = _mm_packs_epi32(lo, hi);
  __m128i b = out.kind == OutputSpec::Kind::U8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
  _mm_storel_epi64(static_cast<__m128i*>(y), b);
}

void finish_row_avx2(const int32_t* raw, int n, const int32_t* colterm, const int32_t* zb, int32_t rowsum,
                     const OutputSpec& out, const float* scales, void* y) {
  const bool pc = out.scale_count > 1;
  const size_t es = out.kind == OutputSpec::Kind::Int32 ? 4 : 1;
  const __m256i rs = _mm256_set1_epi32(rowsum);
  int j = 0;
  for (; j + 8 <= n; j += 8)
    finish8_avx2(raw + j, colterm + j, zb ? zb + j : nullptr, rs, out, scales + (pc ? j : 0), pc,
                 static_cast<uint8_t*>(y) + j * es);
  if (j < n)
    finish_row_scalar(raw + j, n - j, colterm + j, zb ? zb + j : nullptr, rowsum, out, scales + (pc ? j : 0),
                      static_cast<uint8_t*>(y) + j * es);
}

// microkernel_q's output stage for the 256-bit kernels: finish8_avx2's operations on the sums
// c[r][v] (columns 8v..8v+7 of row r) still in registers.
template <int MR, int NV>
inline void fused_finish_avx2(const __m256i (&c)[MR][NV], const FusedFinish& f) {
  const OutputSpec& out = *f.out;
  const __m256 lo = _mm256_set1_ps(static_cast<float>(out.clamp_min - out.zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(out.clamp_max - out.zero_point));
  const __m256i zp = _mm256_set1_epi32(out.zero_point);
  const bool u8 = out.kind == OutputSpec::Kind::U8;
  #pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    const int left = f.valid - v * 8;
    if (left <= 0) break;
    const __m256i ct = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(f.colterm + v * 8));
    // The scales hold only the valid columns (colterm and zb are padded to the panel width).
    const __m256 s = !f.per_channel ? _mm256_set1_ps(f.scales[0])
        : left >= 8 ? _mm256_loadu_ps(f.scales + v * 8)
        : _mm256_maskload_ps(f.scales + v * 8, _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    const __m256i zb = f.zb ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(f.zb + v * 8)) : _mm256_setzero_si256();
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      __m256i x = _mm256_add_epi32(c[r][v], ct);
      if (f.zb) x = _mm256_sub_epi32(x, _mm256_mullo_epi32(zb, _mm256_set1_epi32(f.rowsum[r])));
      __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(x), s);
      y = _mm256_min_ps(_mm256_max_ps(y, lo), hi);
      const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(y), zp);
      const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      const __m128i b = u8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
      uint8_t* dst = f.y + r * f.ldy + v * 8;
      if (left >= 8) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), b);
      } else {
        alignas(16) uint8_t tmp[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b);
        for (int j = 0; j < left; ++j) dst[j] = tmp[j];
      }
    }
  }
}

void dw_pixel_avx2(const uint8_t* const* x, int taps, const int16_t* w, int C, uint8_t x_xor, int32_t* acc) {
  const __m128i xr = _mm_set1_epi8(static_cast<char>(x_xor));
  int c = 0;
  for (; c + 8 <= C; c += 8) {
    __m256i a = _mm256_setzero_si256();
    for (int t = 0; t < taps; t += 2) {
      const __m128i x0 = _mm_xor_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x[t] + c)), xr);
      const __m128i x1 = _mm_xor_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x[t + 1] + c)), xr);
      const __m256i xv = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(x0, x1));
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + (static_cast<size_t>(t / 2) * C + c) * 2));
      a = _mm256_add_epi32(a, _mm256_madd_epi16(xv, wv));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + c), a);
  }
  for (; c < C; ++c) {
    int32_t s = 0;
    for (int t = 0; t < taps; ++t) s += static_cast<int32_t>(x[t][c] ^ x_xor) * w[(static_cast<size_t>(t / 2) * C + c) * 2 + t % 2];
    acc[c] = s;
  }
}
#endif

}  // namespace
}  // namespace edge::kernels

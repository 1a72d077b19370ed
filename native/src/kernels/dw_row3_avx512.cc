// Depthwise 3x3 along an output row with AVX-512 VNNI (DwRow3Args, variant_table.h). Channels
// sit in int32 lanes, 16 per register: each input vector is zero-extended once (vpmovzxbd)
// and multiplied into every output pixel that reads it by vpdpbusd against the tap's weights
// (int8 in the low byte; the activation's other three bytes are zero, so the lane gains
// exactly x * w). Eight output pixels share the loads (3 kernel rows x 10 or 17 columns for
// 8 x 9 products), where the per-pixel kernel reloads and re-interleaves all nine taps and
// transposes its sums back into channel order. The output stage is finish_row_avx512's.
#include "kernels/variant_table.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512F__)
#include <immintrin.h>

namespace edge::kernels {
namespace {

struct Block {
  const uint8_t* rows[3];  // at this channel block
  int C;
  __mmask16 m;
  bool full;
  __m512i w[9], ct, xr;
  __m512 sc, lo, hi;
  __m512i zp;
  int kind;  // 0 int32, 1 u8/s8
};

template <int SW, int G, bool XOR>
inline void pixels(const Block& b, int p, uint8_t* y8, int32_t* y32) {
  __m512i acc[G];
  #pragma GCC unroll 8
  for (int g = 0; g < G; ++g) acc[g] = b.ct;
  const size_t C = static_cast<size_t>(b.C);
  #pragma GCC unroll 3
  for (int ky = 0; ky < 3; ++ky) {
    const uint8_t* r = b.rows[ky] + static_cast<size_t>(p) * SW * C;
    #pragma GCC unroll 17
    for (int i = 0; i < (G - 1) * SW + 3; ++i) {
      __m512i xe = b.full ? _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + i * C)))
                          : _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(b.m, r + i * C));
      if (XOR) xe = _mm512_xor_si512(xe, b.xr);
      #pragma GCC unroll 3
      for (int kx = 0; kx < 3; ++kx) {
        const int j = i - kx;
        if (j >= 0 && j % SW == 0 && j / SW < G) acc[j / SW] = _mm512_dpbusd_epi32(acc[j / SW], xe, b.w[ky * 3 + kx]);
      }
    }
  }
  #pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
    const size_t o = static_cast<size_t>(p + g) * C;
    if (b.kind == 0) {
      _mm512_mask_storeu_epi32(y32 + o, b.m, acc[g]);
      continue;
    }
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[g]), b.sc);
    f = _mm512_min_ps(_mm512_max_ps(f, b.lo), b.hi);
    _mm512_mask_cvtepi32_storeu_epi8(y8 + o, b.m, _mm512_add_epi32(_mm512_cvtps_epi32(f), b.zp));
  }
}

template <int SW, bool XOR>
void run(const Block& b, int count, uint8_t* y8, int32_t* y32) {
  int p = 0;
  for (; p + 8 <= count; p += 8) pixels<SW, 8, XOR>(b, p, y8, y32);
  for (; p < count; ++p) pixels<SW, 1, XOR>(b, p, y8, y32);
}

}  // namespace

void dw_row3_avx512(const DwRow3Args& a) {
  const OutputSpec& out = *a.out;
  const int C = a.C;
  const bool pc = out.scale_count > 1;
  Block b;
  b.C = C;
  b.kind = out.kind == OutputSpec::Kind::Int32 ? 0 : 1;
  b.xr = _mm512_set1_epi32(a.x_xor);
  b.lo = _mm512_set1_ps(static_cast<float>(out.clamp_min - out.zero_point));
  b.hi = _mm512_set1_ps(static_cast<float>(out.clamp_max - out.zero_point));
  b.zp = _mm512_set1_epi32(out.zero_point);
  for (int c = 0; c < C; c += 16) {
    const int left = C - c;
    b.full = left >= 16;
    b.m = b.full ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    for (int t = 0; t < 9; ++t) b.w[t] = _mm512_maskz_loadu_epi32(b.m, a.w + static_cast<size_t>(t) * C + c);
    b.ct = _mm512_maskz_loadu_epi32(b.m, a.colterm + c);
    if (b.kind != 0) b.sc = pc ? _mm512_maskz_loadu_ps(b.m, out.scales + c) : _mm512_set1_ps(out.scales[0]);
    for (int k = 0; k < 3; ++k) b.rows[k] = a.rows[k] + c;
    uint8_t* y8 = static_cast<uint8_t*>(a.y) + c;
    int32_t* y32 = static_cast<int32_t*>(a.y) + c;
    if (a.stride == 1) {
      if (a.x_xor) run<1, true>(b, a.count, y8, y32);
      else run<1, false>(b, a.count, y8, y32);
    } else {
      if (a.x_xor) run<2, true>(b, a.count, y8, y32);
      else run<2, false>(b, a.count, y8, y32);
    }
  }
}

}  // namespace edge::kernels
#endif

// Depthwise 3x3 along an output row with AVX2 (DwRow3Args, variant_table.h), used by the AVX2
// and AVX-VNNI tables. Channels sit in int32 lanes, 8 per register: each input vector is
// zero-extended once (vpmovzxbd) and multiplied into every output pixel that reads it by
// vpmaddwd against the tap's weights (int32 lanes whose low int16 is the weight; the
// activation's high int16 is zero, so the pair sum is exactly x * w). Four output pixels
// share the loads. The output stage is finish8_avx2's; the last C % 8 channels go through
// finish_row_scalar, which every variant matches bit for bit.
#include "kernels/variant_table.h"

#if defined(__AVX2__)
#include <immintrin.h>

namespace edge::kernels {
namespace {

struct Block {
  const uint8_t* rows[3];  // at this channel block
  const int32_t* w;        // at this channel block, tap stride C
  int C;
  __m256i ct, xr;
  __m256 sc, lo, hi;
  __m256i zp;
  int kind;  // 0 int32, 1 u8, 2 s8
};

template <int SW, int G, bool XOR>
inline void pixels(const Block& b, int p, uint8_t* y8, int32_t* y32) {
  __m256i acc[G];
  #pragma GCC unroll 4
  for (int g = 0; g < G; ++g) acc[g] = b.ct;
  const size_t C = static_cast<size_t>(b.C);
  #pragma GCC unroll 3
  for (int ky = 0; ky < 3; ++ky) {
    const uint8_t* r = b.rows[ky] + static_cast<size_t>(p) * SW * C;
    __m256i w[3];
    #pragma GCC unroll 3
    for (int kx = 0; kx < 3; ++kx) w[kx] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.w + (ky * 3 + kx) * C));
    #pragma GCC unroll 9
    for (int i = 0; i < (G - 1) * SW + 3; ++i) {
      __m256i xe = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(r + i * C)));
      if (XOR) xe = _mm256_xor_si256(xe, b.xr);
      #pragma GCC unroll 3
      for (int kx = 0; kx < 3; ++kx) {
        const int j = i - kx;
        if (j >= 0 && j % SW == 0 && j / SW < G)
          acc[j / SW] = _mm256_add_epi32(acc[j / SW], _mm256_madd_epi16(xe, w[kx]));
      }
    }
  }
  #pragma GCC unroll 4
  for (int g = 0; g < G; ++g) {
    const size_t o = static_cast<size_t>(p + g) * C;
    if (b.kind == 0) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y32 + o), acc[g]);
      continue;
    }
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[g]), b.sc);
    f = _mm256_min_ps(_mm256_max_ps(f, b.lo), b.hi);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), b.zp);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y8 + o), b.kind == 1 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w));
  }
}

template <int SW, bool XOR>
void run(const Block& b, int count, uint8_t* y8, int32_t* y32) {
  int p = 0;
  for (; p + 4 <= count; p += 4) pixels<SW, 4, XOR>(b, p, y8, y32);
  for (; p < count; ++p) pixels<SW, 1, XOR>(b, p, y8, y32);
}

}  // namespace

void dw_row3_avx2(const DwRow3Args& a) {
  const OutputSpec& out = *a.out;
  const int C = a.C;
  const bool pc = out.scale_count > 1;
  const size_t es = out.kind == OutputSpec::Kind::Int32 ? 4 : 1;
  Block b;
  b.C = C;
  b.kind = out.kind == OutputSpec::Kind::Int32 ? 0 : out.kind == OutputSpec::Kind::U8 ? 1 : 2;
  b.xr = _mm256_set1_epi32(a.x_xor);
  b.lo = _mm256_set1_ps(static_cast<float>(out.clamp_min - out.zero_point));
  b.hi = _mm256_set1_ps(static_cast<float>(out.clamp_max - out.zero_point));
  b.zp = _mm256_set1_epi32(out.zero_point);
  int c = 0;
  for (; c + 8 <= C; c += 8) {
    b.w = a.w + c;
    b.ct = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.colterm + c));
    if (b.kind != 0) b.sc = pc ? _mm256_loadu_ps(out.scales + c) : _mm256_set1_ps(out.scales[0]);
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
  if (c == C) return;
  // The last C % 8 channels, one pixel at a time.
  const int n = C - c;
  for (int p = 0; p < a.count; ++p) {
    int32_t raw[8];
    for (int j = 0; j < n; ++j) {
      int32_t s = 0;
      for (int t = 0; t < 9; ++t)
        s += static_cast<int32_t>(a.rows[t / 3][(static_cast<size_t>(p) * a.stride + t % 3) * C + c + j] ^ a.x_xor) *
             a.w[static_cast<size_t>(t) * C + c + j];
      raw[j] = s;
    }
    finish_row_scalar(raw, n, a.colterm + c, nullptr, 0, out, out.scales + (pc ? c : 0),
                      static_cast<uint8_t*>(a.y) + (static_cast<size_t>(p) * C + c) * es);
  }
}

}  // namespace edge::kernels
#endif

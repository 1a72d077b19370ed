// Depthwise 3x3 along an output row with AVX2 (DwRow3Args, variant_table.h), used by the AVX2
// and AVX-VNNI tables. Channels sit in int32 lanes, 8 per register, and an input column is
// built once and used by every output pixel that reads it: kernel rows 0 and 1 as int16
// pairs (x0, x1), so one vpmaddwd against (w0, w1) adds x0 * w0 + x1 * w1 exactly, and row 2
// zero-extended alone (its weight lane's high half meets a zero). Four output pixels share
// the columns. The output stage is finish8_avx2's; the last C % 8 channels go through
// finish_row_scalar, which every variant matches bit for bit.
#include "kernels/variant_table.h"

#if defined(__AVX2__)
#include <immintrin.h>

namespace edge::kernels {
namespace {

struct Block {
  const uint8_t* rows[3];  // at this channel block
  int C;
  __m256i w01[3], w2[3];   // per kx: int16 pairs (row 0, row 1) and row 2's weight
  __m256i ct, xr01, xr2;
  __m256 sc, lo, hi;
  __m256i zp;
  int kind;  // 0 int32, 1 u8, 2 s8
};

template <int SW, int G, bool XOR>
inline void pixels(const Block& b, int p, uint8_t* y8, int32_t* y32) {
  __m256i acc[G];
  #pragma GCC unroll 4
  for (int g = 0; g < G; ++g) acc[g] = b.ct;
  const size_t C = static_cast<size_t>(b.C), base = static_cast<size_t>(p) * SW * C;
  #pragma GCC unroll 9
  for (int i = 0; i < (G - 1) * SW + 3; ++i) {
    // Input column i: rows 0 and 1 as int16 pairs per channel (x0 low, x1 high), row 2 alone.
    const size_t off = base + i * C;
    const __m128i r0 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.rows[0] + off));
    const __m128i r1 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.rows[1] + off));
    __m256i x01 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(r0, r1));
    __m256i x2 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.rows[2] + off)));
    if (XOR) x01 = _mm256_xor_si256(x01, b.xr01), x2 = _mm256_xor_si256(x2, b.xr2);
    #pragma GCC unroll 3
    for (int kx = 0; kx < 3; ++kx) {
      const int j = i - kx;
      if (j >= 0 && j % SW == 0 && j / SW < G)
        acc[j / SW] = _mm256_add_epi32(acc[j / SW], _mm256_add_epi32(_mm256_madd_epi16(x01, b.w01[kx]),
                                                                     _mm256_madd_epi16(x2, b.w2[kx])));
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
  for (; p + 2 <= count; p += 2) pixels<SW, 2, XOR>(b, p, y8, y32);
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
  b.xr01 = _mm256_set1_epi32(static_cast<int>(0x00010001u * a.x_xor));
  b.xr2 = _mm256_set1_epi32(a.x_xor);
  b.lo = _mm256_set1_ps(static_cast<float>(out.clamp_min - out.zero_point));
  b.hi = _mm256_set1_ps(static_cast<float>(out.clamp_max - out.zero_point));
  b.zp = _mm256_set1_epi32(out.zero_point);
  const int c_end = a.c_end < 0 ? C : a.c_end;
  int c = a.c_begin;
  for (; c + 8 <= c_end; c += 8) {
    for (int kx = 0; kx < 3; ++kx) {
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.w + static_cast<size_t>(kx) * C + c));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.w + static_cast<size_t>(3 + kx) * C + c));
      b.w01[kx] = _mm256_or_si256(_mm256_and_si256(w0, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(w1, 16));
      b.w2[kx] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.w + static_cast<size_t>(6 + kx) * C + c));
    }
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
  if (c == c_end) return;
  // The last (c_end - c_begin) % 8 channels, one pixel at a time.
  const int n = c_end - c;
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

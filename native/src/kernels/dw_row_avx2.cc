// Depthwise 3x3 and 5x5 along an output row with AVX2 (DwRowArgs, variant_table.h), used by
// the AVX2 and AVX-VNNI tables. Channels sit in int32 lanes, 8 per register, and an input
// column is built once and used by every output pixel that reads it: kernel rows 0 and 1 (and
// 2 and 3 for 5x5) as int16 pairs (x0, x1), so one vpmaddwd against (w0, w1) adds
// x0 * w0 + x1 * w1 exactly, and the last row zero-extended alone (its weight lane's high half
// meets a zero). Four output pixels share the columns. The output stage is finish8_avx2's;
// the last C % 8 channels go through finish_row_scalar, which every variant matches bit for bit.
#include "kernels/variant_table.h"

#if defined(__AVX2__)
#include <immintrin.h>

namespace edge::kernels {
namespace {

struct Block {
  const uint8_t* rows[5];  // at this channel block
  int C;
  __m256i wp[2][5], ws[5];  // per kx: int16 pairs (rows 2p, 2p + 1) and the last row's weight
  __m256i ct, xr01, xr2;
  __m256 sc, lo, hi;
  __m256i zp;
  int kind;  // 0 int32, 1 u8, 2 s8
};

template <int KS, int SW, int G, bool XOR>
inline void pixels(const Block& b, int p, uint8_t* y8, int32_t* y32) {
  constexpr int P = KS / 2;  // row pairs; row KS - 1 alone
  __m256i acc[G];
  #pragma GCC unroll 4
  for (int g = 0; g < G; ++g) acc[g] = b.ct;
  const size_t C = static_cast<size_t>(b.C), base = static_cast<size_t>(p) * SW * C;
  #pragma GCC unroll 11
  for (int i = 0; i < (G - 1) * SW + KS; ++i) {
    // Input column i: row pairs as int16 pairs per channel (x0 low, x1 high), the last row alone.
    const size_t off = base + i * C;
    __m256i xp[P];
    #pragma GCC unroll 2
    for (int q = 0; q < P; ++q) {
      const __m128i r0 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.rows[2 * q] + off));
      const __m128i r1 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.rows[2 * q + 1] + off));
      xp[q] = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(r0, r1));
      if (XOR) xp[q] = _mm256_xor_si256(xp[q], b.xr01);
    }
    __m256i xs = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.rows[KS - 1] + off)));
    if (XOR) xs = _mm256_xor_si256(xs, b.xr2);
    #pragma GCC unroll 5
    for (int kx = 0; kx < KS; ++kx) {
      const int j = i - kx;
      if (j >= 0 && j % SW == 0 && j / SW < G) {
        __m256i sum = _mm256_madd_epi16(xs, b.ws[kx]);
        #pragma GCC unroll 2
        for (int q = 0; q < P; ++q) sum = _mm256_add_epi32(sum, _mm256_madd_epi16(xp[q], b.wp[q][kx]));
        acc[j / SW] = _mm256_add_epi32(acc[j / SW], sum);
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

template <int KS, int SW, bool XOR>
void run(const Block& b, int count, uint8_t* y8, int32_t* y32) {
  int p = 0;
  for (; p + 4 <= count; p += 4) pixels<KS, SW, 4, XOR>(b, p, y8, y32);
  for (; p + 2 <= count; p += 2) pixels<KS, SW, 2, XOR>(b, p, y8, y32);
  for (; p < count; ++p) pixels<KS, SW, 1, XOR>(b, p, y8, y32);
}

}  // namespace

void dw_row_avx2(const DwRowArgs& a) {
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
  const int ks = a.ks;
  auto wrow = [&](int ky, int kx, int c) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.w + static_cast<size_t>(ky * ks + kx) * C + c));
  };
  for (; c + 8 <= c_end; c += 8) {
    for (int kx = 0; kx < ks; ++kx) {
      for (int q = 0; q < ks / 2; ++q)
        b.wp[q][kx] = _mm256_or_si256(_mm256_and_si256(wrow(2 * q, kx, c), _mm256_set1_epi32(0xFFFF)),
                                      _mm256_slli_epi32(wrow(2 * q + 1, kx, c), 16));
      b.ws[kx] = wrow(ks - 1, kx, c);
    }
    b.ct = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.colterm + c));
    if (b.kind != 0) b.sc = pc ? _mm256_loadu_ps(out.scales + c) : _mm256_set1_ps(out.scales[0]);
    for (int k = 0; k < ks; ++k) b.rows[k] = a.rows[k] + c;
    uint8_t* y8 = static_cast<uint8_t*>(a.y) + c;
    int32_t* y32 = static_cast<int32_t*>(a.y) + c;
    dw_row_dispatch(a, [&](auto k, auto sw, auto x) { run<decltype(k)::value, decltype(sw)::value, decltype(x)::value>(b, a.count, y8, y32); });
  }
  if (c == c_end) return;
  // The last (c_end - c_begin) % 8 channels, one pixel at a time.
  const int n = c_end - c;
  for (int p = 0; p < a.count; ++p) {
    int32_t raw[8];
    for (int j = 0; j < n; ++j) {
      int32_t s = 0;
      for (int t = 0; t < ks * ks; ++t)
        s += static_cast<int32_t>(a.rows[t / ks][(static_cast<size_t>(p) * a.stride + t % ks) * C + c + j] ^ a.x_xor) *
             a.w[static_cast<size_t>(t) * C + c + j];
      raw[j] = s;
    }
    finish_row_scalar(raw, n, a.colterm + c, nullptr, 0, out, out.scales + (pc ? c : 0),
                      static_cast<uint8_t*>(a.y) + (static_cast<size_t>(p) * C + c) * es);
  }
}

}  // namespace edge::kernels
#endif

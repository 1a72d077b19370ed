// Depthwise 3x3 and 5x5 along an output row with AVX-512 VNNI (DwRowArgs, variant_table.h).
// Channels sit in int32 lanes, 16 per register, and a lane holds one input column of up to
// four kernel rows (bytes 0..3; 3x3 leaves byte 3 zero): one vpdpbusd against the column's
// weights (same byte order) adds those rows of a kernel column exactly, so a 3x3 pixel is 3
// dot products instead of 9. A 5x5 kernel's fifth row is a second column register (byte 0),
// so a 5x5 pixel is 10. A column is built once (zero-extending loads, shifts, ternary ORs)
// and used by every output pixel that reads it; eight output pixels share 10 (3x3 stride 1)
// to 19 (5x5 stride 2) columns. The per-pixel kernel reloads and re-interleaves all the taps
// and transposes its sums back into channel order. The output stage is finish_row_avx512's.
#include "kernels/variant_table.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512F__)
#include <immintrin.h>

namespace edge::kernels {
namespace {

struct Block {
  const uint8_t* rows[5];  // at this channel block
  int C;
  __mmask16 m;
  bool full;
  // w[kx]: lane bytes 0..3 = the weights of kernel rows 0..3 (3x3: byte 3 = 0); w4[kx]: byte 0
  // = row 4's (5x5). xr, xr4: the int8 activations' xor for the two column registers.
  __m512i w[5], w4[5], ct, xr, xr4;
  __m512 sc, lo, hi;
  __m512i zp;
  int kind;  // 0 int32, 1 u8/s8
  bool u8, packed_clamp;  // packed_clamp: quantized output, every multiplier of the block below 1
  __m512i zp16, lo8, hi8;
};

inline __m512i widen(const Block& b, const uint8_t* p) {
  return _mm512_cvtepu8_epi32(b.full ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)) : _mm_maskz_loadu_epi8(b.m, p));
}

// Input column i of the kernel rows, one int32 lane per channel: bytes 0..2 (3x3) or 0..3
// (5x5) are those rows' activations, the rest zero; *x4 gets row 4 alone (5x5).
template <int KS, bool XOR>
inline __m512i column(const Block& b, size_t off, __m512i* x4) {
  const __m512i x0 = widen(b, b.rows[0] + off), x1 = widen(b, b.rows[1] + off), x2 = widen(b, b.rows[2] + off);
  __m512i v = _mm512_ternarylogic_epi32(x0, _mm512_slli_epi32(x1, 8), _mm512_slli_epi32(x2, 16), 0xFE);  // a | b | c
  if constexpr (KS == 5) {
    v = _mm512_or_si512(v, _mm512_slli_epi32(widen(b, b.rows[3] + off), 24));
    *x4 = widen(b, b.rows[4] + off);
    if (XOR) *x4 = _mm512_xor_si512(*x4, b.xr4);
  }
  if (XOR) v = _mm512_xor_si512(v, b.xr);
  return v;
}

template <int KS, int SW, int G, bool XOR>
inline void pixels(const Block& b, int p, uint8_t* y8, int32_t* y32) {
  __m512i acc[G];
  #pragma GCC unroll 8
  for (int g = 0; g < G; ++g) acc[g] = b.ct;
  const size_t C = static_cast<size_t>(b.C), base = static_cast<size_t>(p) * SW * C;
  #pragma GCC unroll 19
  for (int i = 0; i < (G - 1) * SW + KS; ++i) {
    __m512i v4 = _mm512_setzero_si512();
    const __m512i v = column<KS, XOR>(b, base + i * C, &v4);
    #pragma GCC unroll 5
    for (int kx = 0; kx < KS; ++kx) {
      const int j = i - kx;
      if (j >= 0 && j % SW == 0 && j / SW < G) {
        acc[j / SW] = _mm512_dpbusd_epi32(acc[j / SW], v, b.w[kx]);
        if constexpr (KS == 5) acc[j / SW] = _mm512_dpbusd_epi32(acc[j / SW], v4, b.w4[kx]);
      }
    }
  }
  if (G % 4 == 0 && b.packed_clamp) {
    // Four pixels at a time, the GEMM's packed output stage (gemm_avx512vnni.cc): round, then
    // saturating packs, the zero point in 16 bits and a byte clamp; exact because every
    // multiplier is below 1. Lane j of the permuted bytes is pixel j's 16 channels.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    #pragma GCC unroll 2
    for (int g0 = 0; g0 < G; g0 += 4) {
      __m512i q[4];
      #pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) q[j] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[g0 + j]), b.sc));
      const __m512i w01 = _mm512_adds_epi16(_mm512_packs_epi32(q[0], q[1]), b.zp16);
      const __m512i w23 = _mm512_adds_epi16(_mm512_packs_epi32(q[2], q[3]), b.zp16);
      __m512i v;
      if (b.u8) v = _mm512_min_epu8(_mm512_max_epu8(_mm512_packus_epi16(w01, w23), b.lo8), b.hi8);
      else v = _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(w01, w23), b.lo8), b.hi8);
      v = _mm512_permutexvar_epi32(order, v);
      const __m128i px[4] = {_mm512_castsi512_si128(v), _mm512_extracti32x4_epi32(v, 1), _mm512_extracti32x4_epi32(v, 2),
                             _mm512_extracti32x4_epi32(v, 3)};
      #pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        uint8_t* dst = y8 + static_cast<size_t>(p + g0 + j) * C;
        if (b.full) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), px[j]);
        else _mm_mask_storeu_epi8(dst, b.m, px[j]);
      }
    }
    return;
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

template <int KS, int SW, bool XOR>
void run(const Block& b, int count, uint8_t* y8, int32_t* y32) {
  int p = 0;
  for (; p + 8 <= count; p += 8) pixels<KS, SW, 8, XOR>(b, p, y8, y32);
  // Runs of 4 for the rest: a 7x7 map's rows have 5 interior pixels, and half a row 2 or 3.
  for (; p + 4 <= count; p += 4) pixels<KS, SW, 4, XOR>(b, p, y8, y32);
  for (; p + 2 <= count; p += 2) pixels<KS, SW, 2, XOR>(b, p, y8, y32);
  for (; p < count; ++p) pixels<KS, SW, 1, XOR>(b, p, y8, y32);
}

}  // namespace

void dw_row_avx512(const DwRowArgs& a) {
  const OutputSpec& out = *a.out;
  const int C = a.C;
  const bool pc = out.scale_count > 1;
  Block b;
  b.C = C;
  b.kind = out.kind == OutputSpec::Kind::Int32 ? 0 : 1;
  const int ks = a.ks;
  b.xr = _mm512_set1_epi32(static_cast<int>((ks == 5 ? 0x01010101u : 0x00010101u) * a.x_xor));
  b.xr4 = _mm512_set1_epi32(a.x_xor);
  b.lo = _mm512_set1_ps(static_cast<float>(out.clamp_min - out.zero_point));
  b.hi = _mm512_set1_ps(static_cast<float>(out.clamp_max - out.zero_point));
  b.zp = _mm512_set1_epi32(out.zero_point);
  b.u8 = out.kind == OutputSpec::Kind::U8;
  b.zp16 = _mm512_set1_epi16(static_cast<int16_t>(out.zero_point));
  b.lo8 = _mm512_set1_epi8(static_cast<char>(out.clamp_min));
  b.hi8 = _mm512_set1_epi8(static_cast<char>(out.clamp_max));
  const __m512i byte = _mm512_set1_epi32(0xFF);
  const int c_end = a.c_end < 0 ? C : a.c_end;
  for (int c = a.c_begin; c < c_end; c += 16) {
    const int left = c_end - c;
    b.full = left >= 16;
    b.m = b.full ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    auto wrow = [&](int ky, int kx) {
      return _mm512_and_si512(_mm512_maskz_loadu_epi32(b.m, a.w + static_cast<size_t>(ky * ks + kx) * C + c), byte);
    };
    for (int kx = 0; kx < ks; ++kx) {
      b.w[kx] = _mm512_or_si512(wrow(0, kx), _mm512_or_si512(_mm512_slli_epi32(wrow(1, kx), 8), _mm512_slli_epi32(wrow(2, kx), 16)));
      if (ks == 5) {
        b.w[kx] = _mm512_or_si512(b.w[kx], _mm512_slli_epi32(wrow(3, kx), 24));
        b.w4[kx] = wrow(4, kx);
      }
    }
    b.ct = _mm512_maskz_loadu_epi32(b.m, a.colterm + c);
    if (b.kind != 0) b.sc = pc ? _mm512_maskz_loadu_ps(b.m, out.scales + c) : _mm512_set1_ps(out.scales[0]);
    b.packed_clamp = b.kind != 0 && _mm512_cmp_ps_mask(b.sc, _mm512_set1_ps(1.0f), _CMP_NLT_UQ) == 0;
    for (int k = 0; k < ks; ++k) b.rows[k] = a.rows[k] + c;
    uint8_t* y8 = static_cast<uint8_t*>(a.y) + c;
    int32_t* y32 = static_cast<int32_t*>(a.y) + c;
    dw_row_dispatch(a, [&](auto k, auto sw, auto x) { run<decltype(k)::value, decltype(sw)::value, decltype(x)::value>(b, a.count, y8, y32); });
  }
}

}  // namespace edge::kernels
#endif

// AVX-512 VNNI variant: vpdpbusd multiplies 4 uint8 activations by 4 int8 weights and adds
// the 4 products into an int32 lane without intermediate saturation, so the sum is exact.
// Micro-kernel: up to 6 rows x 64 columns (24 zmm accumulators); the packed panel holds, per
// group of 4 k, 64 columns x 4 bytes = one 64-byte line per 16 columns.
#include "kernels/variant_table.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512F__)
#include <immintrin.h>

#include <cstring>

#include "kernels/x86_finish.h"

namespace edge::kernels {
namespace {

inline uint32_t load4(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// The last k-group: only `n` (1..3) bytes exist; the rest read as zero (times zero weights).
// A masked byte load: a variable-length copy was a byte loop through memory per row and
// k-group (a quarter of the 320x320x3 stem's time, K = 27).
inline uint32_t load_tail(const uint8_t* p, __mmask16 m) {
  return static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_maskz_loadu_epi8(m, p)));
}

template <int MR, int NV, bool XOR, bool FIN>
void kernel(const uint8_t* a, size_t lda, int K, const int8_t* panel, uint8_t a_xor, int32_t* acc, bool accumulate,
            const FusedFinish* f) {
  constexpr int W = NV * 16;
  // One 16-column vector (N = 16 layers, the 16-column tail panel of N = 80): six rows are
  // only six dependent vpdpbusd chains, too few to cover its latency, so even and odd
  // k-groups go to two accumulator sets.
  constexpr bool kDual = NV == 1 && MR > 1;
  __m512i c[MR][NV], c2[kDual ? MR : 1][NV];
  #pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      c[r][v] = accumulate ? _mm512_loadu_si512(acc + r * W + v * 16) : _mm512_setzero_si512();
      // The fused finish starts from the column terms (int32 sums wrap, so the order of the
      // additions does not change the result).
      if (FIN) c[r][v] = _mm512_add_epi32(c[r][v], _mm512_loadu_si512(f->colterm + v * 16));
    }
  #pragma GCC unroll 16
  for (int r = 0; r < (kDual ? MR : 1); ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) c2[r][v] = _mm512_setzero_si512();
  const uint32_t x4 = 0x01010101u * a_xor;
  const int groups = K / 4, tail = K % 4;
  const int8_t* b = panel;
  int g = 0;
  if (MR == 1) {
    // One row: two accumulator sets hide vpdpbusd latency.
    for (; g + 2 <= groups; g += 2, b += 2 * W * 4) {
      const __m512i a0 = _mm512_set1_epi32(static_cast<int>(load4(a + 4 * g) ^ (XOR ? x4 : 0)));
      const __m512i a1 = _mm512_set1_epi32(static_cast<int>(load4(a + 4 * g + 4) ^ (XOR ? x4 : 0)));
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        c[0][v] = _mm512_dpbusd_epi32(c[0][v], a0, _mm512_load_si512(b + v * 64));
        c2[0][v] = _mm512_dpbusd_epi32(c2[0][v], a1, _mm512_load_si512(b + W * 4 + v * 64));
      }
    }
  }
  if constexpr (kDual) {
    for (; g + 2 <= groups; g += 2, b += 2 * W * 4) {
      const __m512i b0 = _mm512_load_si512(b), b1 = _mm512_load_si512(b + W * 4);
      #pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m512i a0 = _mm512_set1_epi32(static_cast<int>(load4(a + r * lda + 4 * g) ^ (XOR ? x4 : 0)));
        const __m512i a1 = _mm512_set1_epi32(static_cast<int>(load4(a + r * lda + 4 * g + 4) ^ (XOR ? x4 : 0)));
        c[r][0] = _mm512_dpbusd_epi32(c[r][0], a0, b0);
        c2[r][0] = _mm512_dpbusd_epi32(c2[r][0], a1, b1);
      }
    }
  }
  for (; g < groups; ++g, b += W * 4) {
    __m512i bv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_si512(b + v * 64);
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512i av = _mm512_set1_epi32(static_cast<int>(load4(a + r * lda + 4 * g) ^ (XOR ? x4 : 0)));
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) c[r][v] = _mm512_dpbusd_epi32(c[r][v], av, bv[v]);
    }
  }
  if (tail) {
    const __mmask16 tm = static_cast<__mmask16>((1u << tail) - 1);
    __m512i bv[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_si512(b + v * 64);
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512i av = _mm512_set1_epi32(static_cast<int>(load_tail(a + r * lda + 4 * g, tm) ^ (XOR ? x4 : 0)));
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) c[r][v] = _mm512_dpbusd_epi32(c[r][v], av, bv[v]);
    }
  }
  if (MR == 1)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) c[0][v] = _mm512_add_epi32(c[0][v], c2[0][v]);
  if constexpr (kDual)
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) c[r][0] = _mm512_add_epi32(c[r][0], c2[r][0]);
  if constexpr (FIN) {
    // finish_row_avx512's operations on the sums still in registers (the column terms are in
    // already). Values end inside the output type's range, so saturating packs are exact.
    const OutputSpec& out = *f->out;
    const __m512 lo = _mm512_set1_ps(static_cast<float>(out.clamp_min - out.zero_point));
    const __m512 hi = _mm512_set1_ps(static_cast<float>(out.clamp_max - out.zero_point));
    const __m512i zp = _mm512_set1_epi32(out.zero_point);
    const bool u8 = out.kind == OutputSpec::Kind::U8;
    __m512 s[NV];
    __m512i zb[NV];
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      // The scales hold only the valid columns (zb is padded to the panel width).
      const int left = f->valid - v * 16;
      const __mmask16 live = left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
      s[v] = f->per_channel ? _mm512_maskz_loadu_ps(live, f->scales + v * 16) : _mm512_set1_ps(f->scales[0]);
      zb[v] = f->zb ? _mm512_loadu_si512(f->zb + v * 16) : _mm512_setzero_si512();
    }
    // 32 to 64 columns with every multiplier below 1: |sum * scale| < 2^31, so vcvtps2dq is exact
    // and the clamp can follow the rounding (the bounds are integers and rounding is
    // monotonic): saturating packs, the zero point added with 16-bit saturation, then a byte
    // min/max per 64 columns, where the float clamp and zero-point add cost three
    // instructions per 16 columns. Saturation never moves a value across [lo, hi].
    bool packed_clamp = false;
    if constexpr (NV >= 2) {
      __mmask16 big = 0;
      #pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) big |= _mm512_cmp_ps_mask(s[v], _mm512_set1_ps(1.0f), _CMP_NLT_UQ);
      packed_clamp = big == 0;
    }
    if (NV >= 2 && packed_clamp) {
      const __m512i zp16 = _mm512_set1_epi16(static_cast<int16_t>(out.zero_point));
      const __m512i lo8 = _mm512_set1_epi8(static_cast<char>(out.clamp_min));
      const __m512i hi8 = _mm512_set1_epi8(static_cast<char>(out.clamp_max));
      const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
      const int valid = f->valid;
      const __mmask64 m = valid >= 64 ? ~0ull : ((1ull << valid) - 1);
      #pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        __m512i q[4];
        #pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
          if (v >= NV) {
            q[v] = _mm512_setzero_si512();
            continue;
          }
          __m512i x = c[r][v < NV ? v : 0];
          if (f->zb) x = _mm512_sub_epi32(x, _mm512_mullo_epi32(zb[v < NV ? v : 0], _mm512_set1_epi32(f->rowsum[r])));
          q[v] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(x), s[v < NV ? v : 0]));
        }
        const __m512i w01 = _mm512_adds_epi16(_mm512_packs_epi32(q[0], q[1]), zp16);
        const __m512i w23 = _mm512_adds_epi16(_mm512_packs_epi32(q[2], q[3]), zp16);
        __m512i b;
        if (u8) b = _mm512_min_epu8(_mm512_max_epu8(_mm512_packus_epi16(w01, w23), lo8), hi8);
        else b = _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(w01, w23), lo8), hi8);
        _mm512_mask_storeu_epi8(f->y + r * f->ldy, m, _mm512_permutexvar_epi32(order, b));
      }
    } else
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      __m512i q[NV];
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        __m512i x = c[r][v];
        if (f->zb) x = _mm512_sub_epi32(x, _mm512_mullo_epi32(zb[v], _mm512_set1_epi32(f->rowsum[r])));
        __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(x), s[v]);
        y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
        q[v] = _mm512_add_epi32(_mm512_cvtps_epi32(y), zp);
      }
      uint8_t* dst = f->y + r * f->ldy;
      if constexpr (NV == 4) {
        // 64 columns: two packs and one lane permutation instead of four 2-uop vpmovdb.
        const __m512i w01 = _mm512_packs_epi32(q[0], q[1]), w23 = _mm512_packs_epi32(q[2], q[3]);
        const __m512i b = u8 ? _mm512_packus_epi16(w01, w23) : _mm512_packs_epi16(w01, w23);
        // Lane L of b holds 4-column groups (q0, q1, q2, q3) of lane L: dword 4L + j is group j of lane L.
        const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        const __m512i bytes = _mm512_permutexvar_epi32(order, b);
        const int valid = f->valid;
        const __mmask64 m = valid >= 64 ? ~0ull : ((1ull << valid) - 1);
        _mm512_mask_storeu_epi8(dst, m, bytes);
      } else {
        #pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) {
          const int left = f->valid - v * 16;
          if (left <= 0) break;
          const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
          _mm512_mask_cvtepi32_storeu_epi8(dst + v * 16, m, q[v]);
        }
      }
    }
  } else {
    #pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) _mm512_storeu_si512(acc + r * W + v * 16, c[r][v]);
  }
}

using KernelFn = void (*)(const uint8_t*, size_t, int, const int8_t*, uint8_t, int32_t*, bool, const FusedFinish*);

template <bool XOR, bool FIN, int MR>
constexpr KernelFn pick_nv(int nv) {
  return nv == 1   ? kernel<MR, 1, XOR, FIN>
         : nv == 2 ? kernel<MR, 2, XOR, FIN>
         : nv == 3 ? kernel<MR, 3, XOR, FIN>
                   : kernel<MR, 4, XOR, FIN>;
}
template <bool XOR, bool FIN>
KernelFn pick(int rows, int nv) {
  switch (rows) {
    case 1: return pick_nv<XOR, FIN, 1>(nv);
    case 2: return pick_nv<XOR, FIN, 2>(nv);
    case 3: return pick_nv<XOR, FIN, 3>(nv);
    case 4: return pick_nv<XOR, FIN, 4>(nv);
    case 5: return pick_nv<XOR, FIN, 5>(nv);
    default: return pick_nv<XOR, FIN, 6>(nv);
  }
}

void microkernel(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                 int32_t* acc, bool accumulate) {
  const int nv = width / 16;
  (a_xor ? pick<true, false>(rows, nv) : pick<false, false>(rows, nv))(a, lda, K, panel, a_xor, acc, accumulate, nullptr);
}
// `acc` is only read (accumulate); the kernel's FIN path never writes it.
void microkernel_q(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                   const int32_t* acc, bool accumulate, const FusedFinish& f) {
  const int nv = width / 16;
  (a_xor ? pick<true, true>(rows, nv) : pick<false, true>(rows, nv))(a, lda, K, panel, a_xor, const_cast<int32_t*>(acc),
                                                                     accumulate, &f);
}

// 16 lanes at a time.
void finish_row_avx512(const int32_t* raw, int n, const int32_t* colterm, const int32_t* zb, int32_t rowsum,
                       const OutputSpec& out, const float* scales, void* y) {
  const bool pc = out.scale_count > 1;
  const __m512i rs = _mm512_set1_epi32(rowsum);
  const __m512 lo = _mm512_set1_ps(static_cast<float>(out.clamp_min - out.zero_point));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(out.clamp_max - out.zero_point));
  const __m512i zp = _mm512_set1_epi32(out.zero_point);
  const __m512 s1 = _mm512_set1_ps(scales ? scales[0] : 0.0f);
  for (int j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1);
    __m512i v = _mm512_add_epi32(_mm512_maskz_loadu_epi32(m, raw + j), _mm512_maskz_loadu_epi32(m, colterm + j));
    if (zb) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(m, zb + j), rs));
    if (out.kind == OutputSpec::Kind::Int32) {
      _mm512_mask_storeu_epi32(static_cast<int32_t*>(y) + j, m, v);
      continue;
    }
    const __m512 s = pc ? _mm512_maskz_loadu_ps(m, scales + j) : s1;
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), s);
    f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);
    _mm512_mask_cvtepi32_storeu_epi8(static_cast<uint8_t*>(y) + j, m, q);
  }
}

// Two taps at a time: their bytes interleaved and widened to int16 pairs, vpmaddwd with the
// paired weights gives x_t * w_t + x_t1 * w_t1 per channel exactly (|products| <= 65025).
void dw_pixel_avx512(const uint8_t* const* x, int taps, const int16_t* w, int C, uint8_t x_xor, int32_t* acc) {
  const __m128i xr = _mm_set1_epi8(static_cast<char>(x_xor));
  for (int c = 0; c < C; c += 16) {
    const int left = C - c;
    const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    const __mmask32 m2 = left >= 16 ? 0xFFFFFFFFu : static_cast<__mmask32>((1ull << (2 * left)) - 1);
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
    for (int t = 0; t < taps; t += 2) {
      const __m128i x0 = _mm_xor_si128(_mm_maskz_loadu_epi8(m, x[t] + c), xr);
      const __m128i x1 = _mm_xor_si128(_mm_maskz_loadu_epi8(m, x[t + 1] + c), xr);
      const __m256i xi = _mm256_set_m128i(_mm_unpackhi_epi8(x0, x1), _mm_unpacklo_epi8(x0, x1));
      const __m512i xv = _mm512_cvtepu8_epi16(xi);
      const __m512i wv = _mm512_maskz_loadu_epi16(m2, w + (static_cast<size_t>(t / 2) * C + c) * 2);
      if ((t / 2) % 2 == 0) a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(xv, wv));
      else a1 = _mm512_add_epi32(a1, _mm512_madd_epi16(xv, wv));
    }
    _mm512_mask_storeu_epi32(acc + c, m, _mm512_add_epi32(a0, a1));
  }
}

// Depthwise with vpdpbusd: four taps of 64 channels are four loads, four byte and four word
// unpacks, and four dot products (the weights are packed in the unpacked order), where the
// tap-pair kernel above widens to 16 bits and needs eight times the instructions.
void dw_pixel_q8_avx512(const uint8_t* const* x, int taps, const int8_t* w, int C, uint8_t x_xor,
                        const int32_t* colterm, const OutputSpec& out, void* y) {
  const int quads = taps / 4, singles = taps % 4;
  const __m512i xr = _mm512_set1_epi8(static_cast<char>(x_xor));
  // The finish of finish_row_avx512, on the sums still in registers.
  const bool pc = out.scale_count > 1, int32_out = out.kind == OutputSpec::Kind::Int32;
  const __m512 lo = _mm512_set1_ps(static_cast<float>(out.clamp_min - out.zero_point));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(out.clamp_max - out.zero_point));
  const __m512i zp = _mm512_set1_epi32(out.zero_point);
  const __m512 s1 = _mm512_set1_ps(out.scales ? out.scales[0] : 0.0f);
  const int blocks = (C + 63) / 64;
  for (int b = 0; b < blocks; ++b) {
    const int c0 = b * 64, left = C - c0;
    const __mmask64 m = left >= 64 ? ~0ull : ((1ull << left) - 1);
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512(), a2 = _mm512_setzero_si512(),
            a3 = _mm512_setzero_si512();
    if (left <= 32) {
      // At most 32 channels left (MobileNetV2's 32-channel layer, the tails of 96 and 144): the
      // same on 256-bit registers, which hold lanes 0 and 1 of the 512-bit weight layout.
      const __mmask32 m32 = left >= 32 ? ~0u : ((1u << left) - 1);
      const __m256i xr2 = _mm512_castsi512_si256(xr);
      __m256i b0 = _mm256_setzero_si256(), b1 = _mm256_setzero_si256(), b2 = _mm256_setzero_si256(),
              b3 = _mm256_setzero_si256();
      for (int q = 0; q < quads; ++q) {
        const uint8_t* const* p = x + 4 * q;
        const __m256i x0 = _mm256_xor_si256(_mm256_maskz_loadu_epi8(m32, p[0] + c0), xr2);
        const __m256i x1 = _mm256_xor_si256(_mm256_maskz_loadu_epi8(m32, p[1] + c0), xr2);
        const __m256i x2 = _mm256_xor_si256(_mm256_maskz_loadu_epi8(m32, p[2] + c0), xr2);
        const __m256i x3 = _mm256_xor_si256(_mm256_maskz_loadu_epi8(m32, p[3] + c0), xr2);
        const __m256i lo01 = _mm256_unpacklo_epi8(x0, x1), hi01 = _mm256_unpackhi_epi8(x0, x1);
        const __m256i lo23 = _mm256_unpacklo_epi8(x2, x3), hi23 = _mm256_unpackhi_epi8(x2, x3);
        const int8_t* wq = w + (static_cast<size_t>(q) * blocks + b) * 256;
        b0 = _mm256_dpbusd_epi32(b0, _mm256_unpacklo_epi16(lo01, lo23), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq)));
        b1 = _mm256_dpbusd_epi32(b1, _mm256_unpackhi_epi16(lo01, lo23), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq + 64)));
        b2 = _mm256_dpbusd_epi32(b2, _mm256_unpacklo_epi16(hi01, hi23), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq + 128)));
        b3 = _mm256_dpbusd_epi32(b3, _mm256_unpackhi_epi16(hi01, hi23), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq + 192)));
      }
      a0 = _mm512_inserti64x4(a0, b0, 0);
      a1 = _mm512_inserti64x4(a1, b1, 0);
      a2 = _mm512_inserti64x4(a2, b2, 0);
      a3 = _mm512_inserti64x4(a3, b3, 0);
    }
    for (int q = 0; q < quads && left > 32; ++q) {
      const uint8_t* const* p = x + 4 * q;
      const __m512i x0 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, p[0] + c0), xr);
      const __m512i x1 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, p[1] + c0), xr);
      const __m512i x2 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, p[2] + c0), xr);
      const __m512i x3 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, p[3] + c0), xr);
      const __m512i lo01 = _mm512_unpacklo_epi8(x0, x1), hi01 = _mm512_unpackhi_epi8(x0, x1);
      const __m512i lo23 = _mm512_unpacklo_epi8(x2, x3), hi23 = _mm512_unpackhi_epi8(x2, x3);
      const int8_t* wq = w + (static_cast<size_t>(q) * blocks + b) * 256;
      a0 = _mm512_dpbusd_epi32(a0, _mm512_unpacklo_epi16(lo01, lo23), _mm512_loadu_si512(wq));
      a1 = _mm512_dpbusd_epi32(a1, _mm512_unpackhi_epi16(lo01, lo23), _mm512_loadu_si512(wq + 64));
      a2 = _mm512_dpbusd_epi32(a2, _mm512_unpacklo_epi16(hi01, hi23), _mm512_loadu_si512(wq + 128));
      a3 = _mm512_dpbusd_epi32(a3, _mm512_unpackhi_epi16(hi01, hi23), _mm512_loadu_si512(wq + 192));
    }
    // a_s lane L holds channels 16L + 4s .. +3: a 4x4 transpose of 128-bit lanes restores order.
    const __m512i t0 = _mm512_shuffle_i32x4(a0, a1, 0x44), t1 = _mm512_shuffle_i32x4(a2, a3, 0x44);
    const __m512i t2 = _mm512_shuffle_i32x4(a0, a1, 0xEE), t3 = _mm512_shuffle_i32x4(a2, a3, 0xEE);
    const __m512i sums[4] = {_mm512_shuffle_i32x4(t0, t1, 0x88), _mm512_shuffle_i32x4(t0, t1, 0xDD),
                             _mm512_shuffle_i32x4(t2, t3, 0x88), _mm512_shuffle_i32x4(t2, t3, 0xDD)};
    for (int k = 0; k < 4; ++k) {
      const int rem = left - 16 * k, c = c0 + 16 * k;
      if (rem <= 0) break;
      const __mmask16 mk = rem >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << rem) - 1);
      __m512i v = _mm512_add_epi32(sums[k], _mm512_maskz_loadu_epi32(mk, colterm + c));
      // The single taps: one byte per int32 lane (zero-extended), times the weight in the low
      // byte of the lane, in channel order.
      for (int i = 0; i < singles; ++i) {
        const __m128i xb = _mm_xor_si128(_mm_maskz_loadu_epi8(mk, x[4 * quads + i] + c), _mm512_castsi512_si128(xr));
        const int8_t* ws = w + (static_cast<size_t>(quads + i) * blocks + b) * 256 + 64 * k;
        v = _mm512_dpbusd_epi32(v, _mm512_cvtepu8_epi32(xb), _mm512_loadu_si512(ws));
      }
      if (int32_out) {
        _mm512_mask_storeu_epi32(static_cast<int32_t*>(y) + c, mk, v);
        continue;
      }
      const __m512 sc = pc ? _mm512_maskz_loadu_ps(mk, out.scales + c) : s1;
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), sc);
      f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
      _mm512_mask_cvtepi32_storeu_epi8(static_cast<uint8_t*>(y) + c, mk, _mm512_add_epi32(_mm512_cvtps_epi32(f), zp));
    }
  }
}

// 12 independent vpdpbusd chains (latency 5, 2 per cycle on recent cores).
uint64_t peak_loop(uint64_t iters, int32_t* sink) {
  __m512i c[12];
  for (int i = 0; i < 12; ++i) c[i] = _mm512_set1_epi32(sink[i]);
  const __m512i a = _mm512_set1_epi32(sink[12]), b = _mm512_set1_epi32(sink[13]);
  for (uint64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) c[i] = _mm512_dpbusd_epi32(c[i], a, b);
  }
  for (int i = 0; i < 12; ++i) sink[i] = _mm512_reduce_add_epi32(c[i]);
  return iters * 12 * 64 * 2;
}

const VariantKernels kTable = {
    Variant::Avx512Vnni, /*nr=*/64, /*col_align=*/16, /*kgroup=*/4, /*mr=*/6, microkernel, /*a_flip=*/0,
    finish_row_avx512, dw_pixel_avx512, peak_loop,
    direct_conv_avx2, quantize_u8_avx2, max_pool_2x2_avx2, dw_pixel_q8_avx512, microkernel_q, dw_row_avx512,
    /*eltwise=*/eltwise_avx2, /*quantize_u8_planes3=*/quantize_u8_planes3_avx2, /*kblock=*/kX86KBlock,
};

}  // namespace
const VariantKernels* avx512vnni_kernels() { return &kTable; }
}  // namespace edge::kernels

#else
namespace edge::kernels {
const VariantKernels* avx512vnni_kernels() { return nullptr; }
}  // namespace edge::kernels
#endif

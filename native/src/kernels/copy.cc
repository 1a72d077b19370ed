#include "kernels/copy.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/dispatch.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace edge::kernels {

uint8_t requantize_u8_scalar(uint8_t x, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp) {
  const float v = static_cast<float>(static_cast<int32_t>(x) - in_zp) * in_scale;
  float r = std::nearbyint(v / out_scale) + static_cast<float>(out_zp);
  r = std::min(std::max(r, 0.0f), 255.0f);
  return static_cast<uint8_t>(static_cast<int32_t>(r));
}

namespace {

void requantize_row_scalar(const uint8_t* x, size_t n, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp, uint8_t* y) {
  for (size_t i = 0; i < n; ++i) y[i] = requantize_u8_scalar(x[i], in_scale, in_zp, out_scale, out_zp);
}

RequantRowFn pick_requant_row() {
  switch (active_variant()) {
    case Variant::Avx2: case Variant::Avx512Vnni: case Variant::AvxVnni:
      if (RequantRowFn f = requantize_u8_row_avx2()) return f;
      break;
    case Variant::Neon: case Variant::Dotprod:
      if (RequantRowFn f = requantize_u8_row_neon()) return f;
      break;
    default: break;
  }
  return requantize_row_scalar;
}

}  // namespace

void requantize_u8_row(const uint8_t* x, size_t n, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp, uint8_t* y) {
  // Chosen per call: the variant may be switched (tests, benchmarks) after a step was built.
  pick_requant_row()(x, n, in_scale, in_zp, out_scale, out_zp, y);
}

#if defined(__SSE2__) || defined(__aarch64__)
// One full 16x16 tile in registers: four rounds of interleaves (bytes, 16-, 32-, 64-bit
// units) of 16 row vectors give the 16 column vectors; a byte at a time took 0.45 ns per byte
// (YOLO's 40x40x144 head map to NCHW, 0.1 ms).
#if defined(__SSE2__)
using V16 = __m128i;
inline V16 ld16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline void st16(uint8_t* p, V16 v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
inline V16 zip_lo(V16 a, V16 b, int unit) {
  return unit == 1 ? _mm_unpacklo_epi8(a, b) : unit == 2 ? _mm_unpacklo_epi16(a, b)
       : unit == 4 ? _mm_unpacklo_epi32(a, b) : _mm_unpacklo_epi64(a, b);
}
inline V16 zip_hi(V16 a, V16 b, int unit) {
  return unit == 1 ? _mm_unpackhi_epi8(a, b) : unit == 2 ? _mm_unpackhi_epi16(a, b)
       : unit == 4 ? _mm_unpackhi_epi32(a, b) : _mm_unpackhi_epi64(a, b);
}
#else
using V16 = uint8x16_t;
inline V16 ld16(const uint8_t* p) { return vld1q_u8(p); }
inline void st16(uint8_t* p, V16 v) { vst1q_u8(p, v); }
inline V16 zip_lo(V16 a, V16 b, int unit) {
  return unit == 1 ? vzip1q_u8(a, b)
       : unit == 2 ? vreinterpretq_u8_u16(vzip1q_u16(vreinterpretq_u16_u8(a), vreinterpretq_u16_u8(b)))
       : unit == 4 ? vreinterpretq_u8_u32(vzip1q_u32(vreinterpretq_u32_u8(a), vreinterpretq_u32_u8(b)))
                   : vreinterpretq_u8_u64(vzip1q_u64(vreinterpretq_u64_u8(a), vreinterpretq_u64_u8(b)));
}
inline V16 zip_hi(V16 a, V16 b, int unit) {
  return unit == 1 ? vzip2q_u8(a, b)
       : unit == 2 ? vreinterpretq_u8_u16(vzip2q_u16(vreinterpretq_u16_u8(a), vreinterpretq_u16_u8(b)))
       : unit == 4 ? vreinterpretq_u8_u32(vzip2q_u32(vreinterpretq_u32_u8(a), vreinterpretq_u32_u8(b)))
                   : vreinterpretq_u8_u64(vzip2q_u64(vreinterpretq_u64_u8(a), vreinterpretq_u64_u8(b)));
}
#endif
inline void transpose16(const uint8_t* x, size_t ldx, uint8_t* y, size_t ldy) {
  V16 a[16], b[16];
  for (int k = 0; k < 16; ++k) a[k] = ld16(x + k * ldx);
  // b[2k + h]: columns 8h..8h+7 of rows 2k, 2k+1 (2-byte units).
  for (int k = 0; k < 8; ++k) b[2 * k] = zip_lo(a[2 * k], a[2 * k + 1], 1), b[2 * k + 1] = zip_hi(a[2 * k], a[2 * k + 1], 1);
  // a[4m + q]: columns 4q..4q+3 of rows 4m..4m+3 (4-byte units).
  for (int m = 0; m < 4; ++m)
    for (int h = 0; h < 2; ++h) {
      a[4 * m + 2 * h] = zip_lo(b[4 * m + h], b[4 * m + 2 + h], 2);
      a[4 * m + 2 * h + 1] = zip_hi(b[4 * m + h], b[4 * m + 2 + h], 2);
    }
  // b[8n + e]: columns 2e, 2e+1 of rows 8n..8n+7 (8-byte units).
  for (int n = 0; n < 2; ++n)
    for (int q = 0; q < 4; ++q) {
      b[8 * n + 2 * q] = zip_lo(a[8 * n + q], a[8 * n + 4 + q], 4);
      b[8 * n + 2 * q + 1] = zip_hi(a[8 * n + q], a[8 * n + 4 + q], 4);
    }
  for (int e = 0; e < 8; ++e) {
    st16(y + (2 * e) * ldy, zip_lo(b[e], b[8 + e], 8));
    st16(y + (2 * e + 1) * ldy, zip_hi(b[e], b[8 + e], 8));
  }
}
#endif

void transpose_u8(const uint8_t* x, size_t rows, size_t cols, size_t ldx, uint8_t* y, size_t ldy) {
  // 16x16 tiles: both the reads and the writes stay within a few cache lines per tile.
  constexpr size_t T = 16;
  for (size_t i0 = 0; i0 < rows; i0 += T) {
    const size_t i1 = std::min(rows, i0 + T);
    for (size_t j0 = 0; j0 < cols; j0 += T) {
      const size_t j1 = std::min(cols, j0 + T);
#if defined(__SSE2__) || defined(__aarch64__)
      if (i1 - i0 == T && j1 - j0 == T) {
        transpose16(x + i0 * ldx + j0, ldx, y + j0 * ldy + i0, ldy);
        continue;
      }
#endif
      for (size_t j = j0; j < j1; ++j) {
        uint8_t* dst = y + j * ldy;
        for (size_t i = i0; i < i1; ++i) dst[i] = x[i * ldx + j];
      }
    }
  }
}

// Plain loops the compiler vectorizes on every target (pmaxub / umax).
void max_u8(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] > b[i] ? a[i] : b[i];
}
void min_u8(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] < b[i] ? a[i] : b[i];
}

}  // namespace edge::kernels

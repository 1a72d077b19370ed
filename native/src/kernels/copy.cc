#include "kernels/copy.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/dispatch.h"

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

void transpose_u8(const uint8_t* x, size_t rows, size_t cols, size_t ldx, uint8_t* y, size_t ldy) {
  // 16x16 tiles: both the reads and the writes stay within a few cache lines per tile.
  constexpr size_t T = 16;
  for (size_t i0 = 0; i0 < rows; i0 += T) {
    const size_t i1 = std::min(rows, i0 + T);
    for (size_t j0 = 0; j0 < cols; j0 += T) {
      const size_t j1 = std::min(cols, j0 + T);
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

#include "kernels/quantize.h"

#include <cmath>

#include "kernels/variant_table.h"

namespace edge::kernels {

namespace {
// round_half_even(x / scale) + zp, saturated, all in float32 as the ONNX reference does.
inline int32_t quantize_one(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  if (std::isnan(x)) return zp;
  float r = std::nearbyint(x / scale) + static_cast<float>(zp);
  r = r < static_cast<float>(lo) ? static_cast<float>(lo) : r;
  r = r > static_cast<float>(hi) ? static_cast<float>(hi) : r;
  return static_cast<int32_t>(r);
}

const char* check_params(QuantLayout layout, const float* scales, const int32_t* zps, int scale_count, QType type) {
  if (scales == nullptr) return "scales are null";
  if (scale_count != 1 && static_cast<size_t>(scale_count) != layout.channels)
    return "scale_count must be 1 or the channel count";
  for (int i = 0; i < scale_count; ++i) {
    if (!(scales[i] > 0.0f) || !std::isfinite(scales[i])) return "scales must be finite and positive";
    if (zps && (zps[i] < qmin(type) || zps[i] > qmax(type))) return "zero points must lie in the type's range";
  }
  return nullptr;
}
}  // namespace

namespace ref {
uint8_t quantize_u8(float x, float scale, int32_t zp) { return static_cast<uint8_t>(quantize_one(x, scale, zp, 0, 255)); }
int8_t quantize_s8(float x, float scale, int32_t zp) { return static_cast<int8_t>(quantize_one(x, scale, zp, -128, 127)); }
}  // namespace ref

void quantize_u8_strided(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride) {
  active_kernels().quantize_u8(x, n, scale, zp, y, y_stride);
}

void quantize_u8_planes3(const float* const planes[3], size_t n, float scale, int32_t zp, uint8_t* y) {
  const VariantKernels& vk = active_kernels();
  if (vk.quantize_u8_planes3 != nullptr) return vk.quantize_u8_planes3(planes, n, scale, zp, y);
  for (int c = 0; c < 3; ++c) vk.quantize_u8(planes[c], n, scale, zp, y + c, 3);
}

// Clamping to [0 - zp, 255 - zp] before rounding equals saturating after it (integer bounds);
// the SIMD versions do the same operations: divide, clamp, round half to even, add zp.
void quantize_u8_scalar(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride) {
  const float lo = static_cast<float>(-zp), hi = static_cast<float>(255 - zp);
  for (size_t i = 0; i < n; ++i) {
    float v = x[i];
    if (std::isnan(v)) v = 0;
    v = v / scale;
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    y[i * y_stride] = static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(v)) + zp);
  }
}

Status quantize_linear(const float* x, QuantLayout layout, const float* scales, const int32_t* zero_points,
                       int scale_count, QType type, void* y) {
  if (const char* e = check_params(layout, scales, zero_points, scale_count, type)) return Status::Error(e);
  if (layout.count() != 0 && (x == nullptr || y == nullptr)) return Status::Error("quantize_linear: x and y must not be null");
  const int32_t lo = qmin(type), hi = qmax(type);
  size_t i = 0;
  for (size_t o = 0; o < layout.outer; ++o) {
    for (size_t c = 0; c < layout.channels; ++c) {
      const size_t p = scale_count == 1 ? 0 : c;
      const float s = scales[p];
      const int32_t zp = zero_points ? zero_points[p] : 0;
      if (type == QType::U8) {
        auto* out = static_cast<uint8_t*>(y);
        for (size_t k = 0; k < layout.inner; ++k, ++i) out[i] = static_cast<uint8_t>(quantize_one(x[i], s, zp, lo, hi));
      } else {
        auto* out = static_cast<int8_t*>(y);
        for (size_t k = 0; k < layout.inner; ++k, ++i) out[i] = static_cast<int8_t>(quantize_one(x[i], s, zp, lo, hi));
      }
    }
  }
  return Status::Ok();
}

Status dequantize_linear(const void* x, QType type, QuantLayout layout, const float* scales, const int32_t* zero_points,
                         int scale_count, float* y) {
  if (const char* e = check_params(layout, scales, zero_points, scale_count, type)) return Status::Error(e);
  if (layout.count() != 0 && (x == nullptr || y == nullptr)) return Status::Error("dequantize_linear: x and y must not be null");
  size_t i = 0;
  for (size_t o = 0; o < layout.outer; ++o) {
    for (size_t c = 0; c < layout.channels; ++c) {
      const size_t p = scale_count == 1 ? 0 : c;
      const float s = scales[p];
      const int32_t zp = zero_points ? zero_points[p] : 0;
      if (type == QType::U8) {
        const auto* in = static_cast<const uint8_t*>(x);
        for (size_t k = 0; k < layout.inner; ++k, ++i) y[i] = static_cast<float>(static_cast<int32_t>(in[i]) - zp) * s;
      } else {
        const auto* in = static_cast<const int8_t*>(x);
        for (size_t k = 0; k < layout.inner; ++k, ++i) y[i] = static_cast<float>(static_cast<int32_t>(in[i]) - zp) * s;
      }
    }
  }
  return Status::Ok();
}

}  // namespace edge::kernels

#pragma once
// QuantizeLinear / DequantizeLinear, bit-exact with the ONNX operator definitions:
//   quantize:   y = saturate(round_half_even(x / scale) + zero_point)
//   dequantize: y = (float(x) - float(zero_point)) * scale   (int32 differences are exact)
// NaN quantizes to the zero point. Tensors are viewed as [outer][channels][inner]:
// per-tensor is channels = 1 (or scale_count = 1); per-channel along ONNX axis `a` of shape
// d is outer = d0*..*d(a-1), channels = d(a), inner = d(a+1)*..*d(n-1), scale_count = channels.
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"

namespace edge::kernels {

struct QuantLayout {
  size_t outer = 1, channels = 1, inner = 1;
  size_t count() const { return outer * channels * inner; }
};

// y has layout.count() elements of type `type`. scales/zero_points hold scale_count values
// (1 or layout.channels); zero_points may be null (zero). Scales must be finite and > 0.
Status quantize_linear(const float* x, QuantLayout layout, const float* scales, const int32_t* zero_points,
                       int scale_count, QType type, void* y);
Status dequantize_linear(const void* x, QType type, QuantLayout layout, const float* scales,
                         const int32_t* zero_points, int scale_count, float* y);

// The float graph input's quantization, optionally scattered (y_stride = C moves one NCHW
// plane into its NHWC channel): y[i * y_stride] = saturate_u8(round_half_even(x[i] / scale) +
// zp), NaN -> zp, n values. Bit-exact with ref::quantize_u8 in every variant (the active one's
// quantize_u8: scalar, AVX2, NEON). scale finite and > 0, zp in [0, 255] (not checked).
void quantize_u8_strided(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride);
// Three planes at once (an RGB image's NCHW -> NHWC move): y[3 * i + c] = the quantization of
// planes[c][i] as above, for i < n. Byte for byte quantize_u8_strided on each plane with stride
// 3, which it replaces where the variant has its own (AVX2: a byte shuffle writes 48 interleaved
// bytes at a time where the strided stores wrote one; NEON: vst3q).
void quantize_u8_planes3(const float* const planes[3], size_t n, float scale, int32_t zp, uint8_t* y);

namespace ref {
// The scalar oracle: one value at a time, straight from the definition.
uint8_t quantize_u8(float x, float scale, int32_t zero_point);
int8_t quantize_s8(float x, float scale, int32_t zero_point);
}  // namespace ref

}  // namespace edge::kernels

#pragma once
// Layer normalisation over the innermost axis of a uint8 tensor, in float inside:
//   y = saturate(round_half_even(((x - mean) / sqrt(var + eps) * gamma + beta) / y_scale) + y_zp)
// mean and variance come from exact integer sums of q - x_zp (int64), so they carry no
// rounding at all; each output is then a handful of float32 operations, within 1 output step
// of a float64 reference. This is ONNX LayerNormalization (opset 17) and the ReduceMean / Sub /
// Pow / Sqrt / Div / Mul / Add chain PyTorch and PaddleOCR export for it, done in one pass.
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/thread_pool.h"

namespace edge::kernels {

struct LayerNormArgs {
  size_t rows = 1, len = 1;
  const uint8_t* x = nullptr;
  float x_scale = 1;
  int32_t x_zero_point = 0;
  const float* gamma = nullptr;  // len values, or null for 1
  const float* beta = nullptr;   // len values, or null for 0
  float epsilon = 1e-5f;
  uint8_t* y = nullptr;  // may alias x
  float y_scale = 1;
  int32_t y_zero_point = 0;
};

Status qlayernorm(const LayerNormArgs& args, ThreadPool* pool = nullptr);

}  // namespace edge::kernels

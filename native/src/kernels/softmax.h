#pragma once
// Softmax over one axis of a uint8 tensor, computed in float inside (mixed precision, as
// XNNPACK and TFLite do): int8 is the wrong precision for exp and the normalising sum.
//   y = saturate(round_half_even(exp((q - max_q) * x_scale) / sum / y_scale) + y_zp)
// The input enters only through q - max_q in [0, 255], so the 256 exponentials are a table
// built once at load; the sum is accumulated in double. Against a float64 reference the
// result is within 1 output step (float32 rounding can only move a value that sits within
// ~1e-5 steps of a rounding boundary).
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/thread_pool.h"

namespace edge::kernels {

struct SoftmaxTable {
  float e[256];  // e[d] = exp(-d * x_scale)
};
SoftmaxTable build_softmax_table(float x_scale);

// The tensor as [outer][axis][inner] (the softmax runs along the middle dimension).
struct SoftmaxArgs {
  size_t outer = 1, axis = 1, inner = 1;
  const uint8_t* x = nullptr;
  uint8_t* y = nullptr;  // may not alias x
  float y_scale = 1;
  int32_t y_zero_point = 0;
};

Status qsoftmax(const SoftmaxTable& table, const SoftmaxArgs& args, ThreadPool* pool = nullptr);

}  // namespace edge::kernels

#pragma once
// Quantized elementwise add and mul (ONNX Runtime QLinearAdd / QLinearMul semantics), all
// operands of one type (uint8 or int8):
//   add: y = clamp(round((a_scale/y_scale) * (a - a_zp) + (b_scale/y_scale) * (b - b_zp)) + y_zp)
//   mul: y = clamp(round((a_scale*b_scale/y_scale) * ((a - a_zp) * (b - b_zp))) + y_zp)
// computed in float32 without fused multiply-add, rounding half to even; the ratios are
// computed once in float32 in that order. B broadcasts against A (which has the output's
// shape): Full (same count), PerChannel (B has `channels` values, the innermost axis of A),
// or Scalar (one value). clamp_min/clamp_max default to the type's range (fused ReLU/Clip).
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/thread_pool.h"

namespace edge::kernels {

enum class Broadcast : uint8_t { Full, PerChannel, Scalar };

struct EltwiseArgs {
  QType type = QType::U8;
  const void* a = nullptr;
  float a_scale = 1;
  int32_t a_zero_point = 0;
  const void* b = nullptr;
  float b_scale = 1;
  int32_t b_zero_point = 0;
  Broadcast broadcast = Broadcast::Full;
  size_t channels = 1;  // for PerChannel: length of B and of A's innermost axis
  void* y = nullptr;     // may alias a
  float y_scale = 1;
  int32_t y_zero_point = 0;
  size_t count = 0;      // elements of A and Y
  int32_t clamp_min = INT32_MIN, clamp_max = INT32_MAX;  // clipped to the type's range
};

Status qadd(const EltwiseArgs& args, ThreadPool* pool = nullptr);
Status qmul(const EltwiseArgs& args, ThreadPool* pool = nullptr);
// qadd over a block of `rows` rows of args.count elements each, row i starting i * stride
// elements after args.a, args.b and args.y (Full broadcast), on the calling thread: a GEMM
// tile's residual add when the tile holds only some of each row's columns. The arguments are
// checked once for the whole block (a call per row cost more than the row's add).
Status qadd_rows(const EltwiseArgs& args, size_t rows, size_t stride);

namespace ref {
void qadd(const EltwiseArgs& args);
void qmul(const EltwiseArgs& args);
}  // namespace ref

}  // namespace edge::kernels

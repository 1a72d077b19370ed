#pragma once
// Resize of an NHWC uint8 map over H and W. The ONNX coordinate rules (nearest modes,
// coordinate_transformation_mode) are resolved once at load into per-row and per-column source
// indices (and, for linear, the weight of the second neighbour), so one kernel serves them all.
//  - nearest: y = x at (ys[oy], xs[ox]); a byte copy when the scales agree (exact), else the
//    value requantized in float32 (round half to even, as a QuantizeLinear would).
//  - linear: v = (1-wy)((1-wx)a + wx b) + wy((1-wx)c + wx d) on q - x_zp in float32, then
//    y = round_half_even(v * x_scale / y_scale) + y_zp: within 1 output step of float64.
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/thread_pool.h"

namespace edge::kernels {

struct ResizeArgs {
  int batch = 1, H = 0, W = 0, C = 0, OH = 0, OW = 0;
  bool linear = false;
  const int32_t* y0 = nullptr;  // OH source rows (nearest: the row)
  const int32_t* y1 = nullptr;  // OH second rows (linear)
  const float* wy = nullptr;    // OH weights of y1 (linear)
  const int32_t* x0 = nullptr;  // OW source columns
  const int32_t* x1 = nullptr;
  const float* wx = nullptr;
  const uint8_t* x = nullptr;
  float x_scale = 1;
  int32_t x_zero_point = 0;
  uint8_t* y = nullptr;
  float y_scale = 1;
  int32_t y_zero_point = 0;
};

// Checks every index against H and W; writes nothing on error.
Status qresize(const ResizeArgs& args, ThreadPool* pool = nullptr);

}  // namespace edge::kernels

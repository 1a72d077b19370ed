#pragma once
// Engine-side loops for shapes the kernel library's general paths handle poorly:
//  - quantizing the float graph input (optionally NCHW -> NHWC) with 4-wide float math;
//  - a direct convolution for layers with very few input channels (the first layer of a CNN:
//    C <= 4), where im2col + GEMM spends its time building rows of 1-4 bytes per tap rather
//    than multiplying. Measured per step (bench:engine --profile) on the digits model: the
//    direct loop wins for C = 1 (about 11 us vs 25-30 us), the kernels' convolution for C = 8
//    (about 8 us vs 13-16 us), so the cut is at 4.
// Both round exactly like the kernels (float32 multiply, clamp, round half to even).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/conv.h"
#include "kernels/pool.h"

namespace edge::engine {

// y[i * y_stride] = saturate_u8(round_half_even(x[i] / scale) + zp), NaN -> zp.
void quantize_u8_strided(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride);

// Max pooling with a 2x2 window, stride 2, no padding, on NHWC u8 (byte maxima over whole
// channel rows, which the compiler turns into 16-byte vector maxima).
void max_pool_2x2(const kernels::PoolShape& s, const uint8_t* x, uint8_t* y);

// Direct convolution, groups == 1, NHWC u8 input, weights already centred (zero point 0).
class DirectConv {
 public:
  // Taps (C * KH * KW): 160 * 255 * 128 < 2^24 keeps every float sum exact.
  static constexpr int kMaxTaps = 160;
  static bool suits(const kernels::ConvShape& s) {
    return s.groups == 1 && s.C * s.kernel_h * s.kernel_w <= kMaxTaps && s.C <= 4 && s.out_channels <= 32;
  }
  // w: [M][C][KH][KW] int8 (ONNX layout).
  DirectConv(const kernels::ConvShape& s, const int8_t* w);
  // acc: scratch_floats() floats. scales: 1 or out_channels multipliers.
  void run(const uint8_t* x, int32_t x_zp, const int32_t* bias, const float* scales, int scale_count, int32_t y_zp,
           int32_t lo, int32_t hi, uint8_t* y, float* acc) const;
  // Copies bias and multipliers padded to whole vectors (call once after construction).
  void set_channels(const int32_t* bias, const float* scales, int scale_count);
  // Scratch: the padded float copy of one input image (AVX2 path) or the accumulators.
  size_t scratch_floats() const {
    return static_cast<size_t>(s_.H + s_.pad_top + s_.pad_bottom) * (s_.W + s_.pad_left + s_.pad_right) * s_.C + Mp_ + 8;
  }
  size_t bytes() const { return w_.size() * sizeof(float); }

 private:
  kernels::ConvShape s_;
  int Mp_ = 0;              // out_channels rounded up to 8
  bool simd_ = true;   // false when the scalar kernel variant is forced
  bool avx2_ = false;
  std::vector<float> w_;    // [KH][KW][C][Mp]
  std::vector<int32_t> bias_;  // Mp values
  std::vector<float> scales_;              // Mp values
};

}  // namespace edge::engine

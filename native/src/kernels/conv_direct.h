#pragma once
// Direct convolution for layers with very few input channels (the first layer of a CNN:
// C <= 4), where im2col + GEMM spends its time building rows of 1-4 bytes per tap rather than
// multiplying. Measured per step (bench:engine --profile) on the digits model: the direct loop
// wins for C = 1 (about 11 us vs 25-30 us), the im2col convolution for C = 8 (about 8 us vs
// 13-16 us) and, on 224x224 RGB, for C = 3 (see wins()): the engine takes it up to C = 2; the
// kernel itself runs up to C = 4.
//
// groups == 1, NHWC u8 input, int8 weights already centred (zero point 0), u8 output. The
// weights are held as float32: every product and partial sum is an integer below 2^24
// (kMaxTaps), so the float sums are exact in any order and with or without FMA, and the
// requantization is the kernels' own (float32 multiply, clamp, round half to even), so every
// variant (direct_conv in variant_table.h: scalar, AVX2+FMA, NEON) agrees bit for bit with
// the scalar one and with ref::conv.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/conv.h"
#include "kernels/dispatch.h"
#include "kernels/thread_pool.h"

namespace edge::kernels {

struct VariantKernels;

class DirectConv {
 public:
  // Taps (C * KH * KW): 160 * 255 * 128 < 2^24 keeps every float sum exact.
  static constexpr int kMaxTaps = 160;
  static bool suits(const ConvShape& s) {
    return s.groups == 1 && s.C * s.kernel_h * s.kernel_w <= kMaxTaps && s.C <= 4 && s.out_channels <= 32;
  }
  // Where it is also faster than im2col: 1 or 2 input channels. At 3 (the RGB first layer of
  // MobileNetV2, 224x224x3 -> 112x112x32 3x3 s2) im2col + GEMM measured 353 vs 575 us with the
  // AVX-512 VNNI kernels and 508 vs 642 us with AVX2 (bench:zoo --profile).
  static bool wins(const ConvShape& s) { return suits(s) && s.C <= 2; }
  // s must be valid (check_conv_shape) and suit(). w: [M][C][KH][KW] int8 (ONNX layout);
  // bias: M values or null; scales: 1 or M output multipliers. Nothing is kept borrowed.
  // Runs with the variant active now (like packed weights, see gemm.h).
  DirectConv(const ConvShape& s, const int8_t* w, const int32_t* bias, const float* scales, int scale_count);
  // y = clamp(requantize(sum (x - x_zp) * w + bias), lo, hi) for the whole batch.
  // scratch: scratch_floats() floats.
  void run(const uint8_t* x, int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi, uint8_t* y, float* scratch) const;
  // The same split across `pool` in bands of output rows: each band runs the variant on the
  // input rows it reads (a sub-shape with its own padding), so every output byte is computed
  // exactly as in the one-thread run. scratch: scratch_floats(pool_threads(pool)) floats.
  void run(const uint8_t* x, int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi, uint8_t* y, float* scratch,
           ThreadPool* pool) const;
  // The padded float copy of one input image (SIMD variants) or the accumulators (scalar).
  size_t scratch_floats() const {
    return static_cast<size_t>(s_.H + s_.pad_top + s_.pad_bottom) * (s_.W + s_.pad_left + s_.pad_right) * s_.C + Mp_ + 8;
  }
  // Scratch for a run on `threads` threads (one band's copy per thread).
  size_t scratch_floats(int threads) const {
    if (!banded(threads)) return scratch_floats();
    return static_cast<size_t>(threads) * band_floats();
  }
  // The float weights (the caller counts its own bias and multipliers).
  size_t bytes() const { return w_.size() * sizeof(float); }
  const ConvShape& shape() const { return s_; }
  Variant variant() const;

 private:
  // Bands need every band's window to touch a real input row (padding no taller than the kernel).
  bool banded(int threads) const {
    const int extent = (s_.kernel_h - 1) * s_.dilation_h;
    return threads > 1 && s_.out_h() > 1 && s_.pad_top <= extent && s_.pad_bottom <= extent;
  }
  int band_rows() const;
  size_t band_floats() const;  // one band's scratch, rounded up to 16 floats (64 bytes)
  ConvShape s_;
  int Mp_ = 0;                 // out_channels rounded up to 8
  const VariantKernels* vk_;   // the variant chosen at construction
  std::vector<float> w_;       // [KH][KW][C][Mp]
  std::vector<int32_t> bias_;  // Mp values
  std::vector<float> scales_;  // Mp values
};

}  // namespace edge::kernels

#pragma once
// Quantized 2-D convolution (ONNX QLinearConv / ConvInteger semantics) on NHWC tensors.
// Input x: [batch][H][W][C], output y: [batch][OH][OW][out_channels]. Weights are given in
// ONNX layout [out_channels][C / groups][kernel_h][kernel_w] and packed once at load by
// pack_conv(), which picks the algorithm:
//   - Pointwise: 1x1, stride 1, no padding: a GEMM straight on the input (per group);
//   - Depthwise: groups == C and out_channels == C (channel multiplier 1): a direct kernel,
//     all kernel sizes; 3x3 and 5x5 (with 8+ inside pixels a row) with dilation 1 and
//     horizontal stride 1 or 2 run the interior of each output row through the variant's
//     dw_row (several output pixels sharing each loaded input column), the border pixels
//     through the per-pixel kernel;
//   - Im2col: everything else (regular, grouped, strided, dilated): rows of the im2col
//     matrix are built per tile in arena scratch (padding filled with the input zero point,
//     so it contributes exactly zero) and fed to the GEMM; regular convolutions on up to 48
//     input channels over wide maps skip the matrix and run by kernel rows (conv_rows.h).
// The PackedConv owns its packed weights; the original weights can be freed after packing.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/common.h"
#include "kernels/gemm.h"
#include "kernels/thread_pool.h"

namespace edge::kernels {

struct ConvShape {
  int batch = 1, H = 0, W = 0, C = 0;  // input, NHWC
  int out_channels = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;
  int out_h() const { return (H + pad_top + pad_bottom - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1; }
  int out_w() const { return (W + pad_left + pad_right - (dilation_w * (kernel_w - 1) + 1)) / stride_w + 1; }
};
// Null when the shape is valid; else a sentence saying which field is wrong.
const char* check_conv_shape(const ConvShape& s);

// The output columns [lo, hi) whose windows of `kernel_w` columns (dilation 1) lie inside the
// image horizontally, reading no padding; hi == lo when there are none. The row kernels run
// these columns straight from the input and leave the edges to another path.
struct InsideColumns {
  int lo = 0, hi = 0;
  int count() const { return hi - lo; }
};
inline InsideColumns inside_columns(const ConvShape& s, int kernel_w) {
  const int OW = s.out_w();
  InsideColumns r;
  r.lo = std::min(OW, (s.pad_left + s.stride_w - 1) / s.stride_w);
  const int last = s.W - kernel_w + s.pad_left;  // the last window's start, in padded columns
  r.hi = last < 0 ? r.lo : std::max(r.lo, std::min(OW, last / s.stride_w + 1));
  return r;
}

class PackedConv {
 public:
  enum class Algo : uint8_t { Pointwise, Depthwise, Im2col };
  const ConvShape& shape() const { return shape_; }
  Algo algo() const { return algo_; }
  Variant variant() const { return variant_; }
  // Implementation details used by conv.cc.
  const std::vector<std::unique_ptr<PackedWeights>>& group_weights() const { return group_w_; }
  // Depthwise weights minus their zero point, in tap pairs: [(taps+1)/2][C][2] (the odd tap is 0).
  const std::vector<int16_t>& dw_weights() const { return dw_w_; }
  const std::vector<int32_t>& dw_weight_sums() const { return dw_wsum_; }  // sum over taps, per channel
  // The same weights as int8 tap quads for the variant's dw_pixel_q8 (variant_table.h); empty
  // when the variant has none or a centred weight leaves [-128, 127].
  const std::vector<int8_t>& dw_q8_weights() const { return dw_q8_; }
  // 3x3 or 5x5, dilation 1, horizontal stride 1 or 2, centred weights in [-128, 127], and a
  // variant with dw_row: the weights as int32 [taps][C] for runs of interior output pixels;
  // else empty.
  const std::vector<int32_t>& dw_row_weights() const { return dwr_w_; }
  size_t bytes() const;

 private:
  friend Status pack_conv(const ConvShape&, const int8_t*, const int32_t*, int, Variant, std::unique_ptr<PackedConv>*);
  ConvShape shape_;
  Algo algo_ = Algo::Im2col;
  Variant variant_ = Variant::Scalar;
  std::vector<std::unique_ptr<PackedWeights>> group_w_;  // one per group (GEMM algorithms)
  std::vector<int16_t> dw_w_;
  std::vector<int32_t> dw_wsum_;
  std::vector<int8_t> dw_q8_;
  std::vector<int32_t> dwr_w_;
};

// w: [out_channels][C/groups][kernel_h][kernel_w] int8; w_zero_points: 1 or out_channels
// values (null = 0).
Status pack_conv(const ConvShape& shape, const int8_t* w, const int32_t* w_zero_points, int w_zp_count,
                 Variant variant, std::unique_ptr<PackedConv>* out);
inline Status pack_conv(const ConvShape& shape, const int8_t* w, const int32_t* w_zero_points, int w_zp_count,
                        std::unique_ptr<PackedConv>* out) {
  return pack_conv(shape, w, w_zero_points, w_zp_count, active_variant(), out);
}

struct ConvArgs {
  const void* x = nullptr;  // NHWC input; borrowed
  QType x_type = QType::U8;
  int32_t x_zero_point = 0;
  const int32_t* bias = nullptr;  // out_channels values or null
  void* y = nullptr;              // NHWC output (int32/u8/s8 per out.kind)
  OutputSpec out;                 // scales: 1 or out_channels (x_scale * w_scale[c] / y_scale)
  // Optional residual add (GemmArgs::residual_add): y = qadd(conv result, residual_add->b),
  // fused into the GEMM's tiles for pointwise convolutions, a pass over y otherwise. Borrowed.
  const EltwiseArgs* residual_add = nullptr;
};

size_t conv_scratch_bytes(const PackedConv& conv, int threads);
Status conv(const PackedConv& conv, const ConvArgs& args, Arena& arena, ThreadPool* pool = nullptr);

namespace ref {
// The oracle: direct seven-loop convolution on ONNX-layout weights, NHWC activations.
void conv(const ConvShape& s, const void* x, QType x_type, int32_t x_zp, const int8_t* w, const int32_t* w_zps,
          int w_zp_count, const int32_t* bias, const OutputSpec& out, void* y);
}  // namespace ref

}  // namespace edge::kernels

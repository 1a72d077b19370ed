#pragma once
// Transposed convolution (ONNX ConvTranspose) on NHWC uint8 with int8 weights, exact int32
// accumulation and the conv's per-channel requantization:
//   acc[n][oy][ox][m] = sum over (iy, ix, ci, ky, kx) with oy = iy*sh - pad_top + ky*dh and
//                       ox = ix*sw - pad_left + kx*dw of (x[n][iy][ix][ci] - x_zp) * w[ci][m'][ky][kx]
// (m' the channel inside its group), then y = requantize(acc + bias[m]).
// It runs as the int8 GEMM (every variant: AVX2, VNNI, NEON, dot product; gemm.h) of the input
// pixels against the weights laid out [C/g][KH][KW][M/g], giving one int32 column per
// (ky, kx, m), and an exact integer scatter-add of those columns into the output (col2im).
// Integer sums in any order are the same sums, so every variant equals ref::conv_transpose.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/common.h"
#include "kernels/gemm.h"
#include "kernels/thread_pool.h"

namespace edge::kernels {

struct DeconvShape {
  int batch = 1, H = 0, W = 0, C = 0, M = 0;  // C input channels, M output channels
  int KH = 1, KW = 1, stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dil_h = 1, dil_w = 1, out_pad_h = 0, out_pad_w = 0, group = 1;
  int out_h() const { return (H - 1) * stride_h - pad_top - pad_bottom + dil_h * (KH - 1) + 1 + out_pad_h; }
  int out_w() const { return (W - 1) * stride_w - pad_left - pad_right + dil_w * (KW - 1) + 1 + out_pad_w; }
};

// Null when the shape is valid, else why not.
const char* deconv_shape_error(const DeconvShape& s);

class PackedDeconv {
 public:
  // w: ONNX ConvTranspose weights [C][M/group][KH][KW], zero point already subtracted.
  static Status pack(const DeconvShape& s, const int8_t* w, std::unique_ptr<PackedDeconv>* out);
  const DeconvShape& shape() const { return shape_; }
  size_t bytes() const;
  const PackedWeights& group(int g) const { return *groups_[g]; }

 private:
  DeconvShape shape_;
  std::vector<std::unique_ptr<PackedWeights>> groups_;
};

size_t deconv_scratch_bytes(const PackedDeconv& p, int threads);

// x: NHWC u8 [batch][H][W][C]; y: NHWC [batch][out_h][out_w][M], u8 or int32 per out.kind;
// bias: M values or null; out: u8 with 1 or M scales (per output channel) and a clamp, or raw
// int32 sums plus the bias (OutputSpec::int32(): the 16-bit steps combine two of them).
Status conv_transpose(const PackedDeconv& p, const uint8_t* x, int32_t x_zero_point, const int32_t* bias,
                      const OutputSpec& out, void* y, Arena& arena, ThreadPool* pool = nullptr);

namespace ref {
// The scalar oracle: the scatter written out, on the unpacked ONNX weights.
void conv_transpose(const DeconvShape& s, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                    const OutputSpec& out, uint8_t* y);
}  // namespace ref

}  // namespace edge::kernels

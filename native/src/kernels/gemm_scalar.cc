// The scalar variant: portable C++ that every CPU runs, and the generic pieces (requantized
// row output, depthwise accumulation) that the SIMD variants fall back to.
#include <algorithm>

#include "kernels/variant_table.h"

namespace edge::kernels {

namespace {

void microkernel_scalar(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                        int32_t* acc, bool accumulate) {
  if (!accumulate) std::fill(acc, acc + rows * width, 0);
  for (int k = 0; k < K; ++k) {
    const int8_t* b = panel + static_cast<size_t>(k) * width;
    for (int r = 0; r < rows; ++r) {
      const int32_t av = a[r * lda + k] ^ a_xor;
      int32_t* out = acc + r * width;
      for (int j = 0; j < width; ++j) out[j] += av * b[j];
    }
  }
}

const VariantKernels kScalar = {
    Variant::Scalar, /*nr=*/16, /*col_align=*/4, /*kgroup=*/1, /*mr=*/4, microkernel_scalar, /*a_flip=*/0,
    finish_row_scalar, dw_pixel_scalar, /*peak_loop=*/nullptr,
    direct_conv_scalar, quantize_u8_scalar, max_pool_2x2_scalar, /*dw_pixel_q8=*/nullptr,
    /*microkernel_q=*/nullptr, /*dw_row=*/nullptr, /*eltwise=*/nullptr, /*quantize_u8_planes3=*/nullptr,
};

}  // namespace

void finish_row_scalar(const int32_t* raw, int n, const int32_t* colterm, const int32_t* zb, int32_t rowsum,
                       const OutputSpec& out, const float* scales, void* y) {
  const bool per_channel = out.scale_count > 1;
  for (int j = 0; j < n; ++j) {
    uint32_t v = static_cast<uint32_t>(raw[j]) + static_cast<uint32_t>(colterm[j]);
    if (zb) v -= static_cast<uint32_t>(zb[j]) * static_cast<uint32_t>(rowsum);
    const int32_t acc = static_cast<int32_t>(v);
    switch (out.kind) {
      case OutputSpec::Kind::Int32: static_cast<int32_t*>(y)[j] = acc; break;
      case OutputSpec::Kind::U8:
        static_cast<uint8_t*>(y)[j] = static_cast<uint8_t>(
            requantize_scalar(acc, scales[per_channel ? j : 0], out.zero_point, out.clamp_min, out.clamp_max));
        break;
      case OutputSpec::Kind::S8:
        static_cast<int8_t*>(y)[j] = static_cast<int8_t>(
            requantize_scalar(acc, scales[per_channel ? j : 0], out.zero_point, out.clamp_min, out.clamp_max));
        break;
    }
  }
}

void dw_pixel_scalar(const uint8_t* const* x, int taps, const int16_t* w, int C, uint8_t x_xor, int32_t* acc) {
  std::fill(acc, acc + C, 0);
  for (int t = 0; t < taps; ++t) {
    const int16_t* wt = w + static_cast<size_t>(t / 2) * C * 2 + t % 2;
    for (int c = 0; c < C; ++c) acc[c] += static_cast<int32_t>(x[t][c] ^ x_xor) * wt[2 * c];
  }
}

const VariantKernels* scalar_kernels() { return &kScalar; }

}  // namespace edge::kernels

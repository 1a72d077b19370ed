#pragma once
// Internal: a regular convolution computed by kernel rows, without im2col ("implicit im2col").
//
// In NHWC, one kernel row of an output pixel's window (kernel_w taps of C channels, unit
// horizontal dilation) is span = kernel_w * C contiguous input bytes, and along an output row
// the next pixel's kernel row starts stride_w * C bytes further. So for a run of output pixels
// inside the image horizontally, kernel row ky of every pixel is one strided matrix of the
// input: rows of `span` bytes, `stride_w * C` apart. The GEMM micro-kernel multiplies it by the
// ky-th block of the packed weights (k = ky * span ...), accumulates the kernel rows in its
// tile (the K-blocking it already has) and finishes the last one in registers. A kernel row
// above or below the image reads a row of zero-point bytes (their products cancel against the
// column terms, as im2col's padding does). Pixels near the left and right edges take im2col
// rows as before.
//
// The sums are the same integers as im2col + GEMM in another order (int32 addition), so the
// bytes are identical. What it saves is im2col's copy, about K bytes a pixel against K x N
// multiply-adds, so it pays with few output channels; what it adds is storing and reloading
// the tile's sums between kernel rows. Measured with the AVX-512 VNNI kernels on a Zen 4, one
// thread, 3x3 stride 1 pad 1, best of 300 calls, im2col + GEMM -> kernel rows, us:
//   80x80x16->16 139 -> 96, 80x80x32->32 347 -> 300, 40x40x32->32 87 -> 76,
//   40x40x48->48 172 -> 157, 40x40x64->64 285-301 -> 286, 56x56x64->64 566 -> 549-554,
//   40x40x64->80 351-373 -> 360-389, 40x40x80->80 429 -> 443, 20x20x64->64 72 -> 75,
//   10x10x128->128 67 -> 84; 160x160x16->32 stride 2: 180-195 -> 191.
// So conv_rows_wins() takes up to 48 input channels on maps at least four micro-tiles wide.
#include <cstddef>
#include <cstdint>

#include "kernels/conv.h"
#include "kernels/variant_table.h"

namespace edge::kernels {

// Whether conv_rows computes this layer with these weights: one group, unit horizontal
// dilation, whole k-groups per kernel row, no weight zero points, a requantized output and a
// variant that finishes in registers, and enough pixels inside each output row.
bool conv_rows_suits(const ConvShape& s, const PackedWeights& w, const VariantKernels& vk, const OutputSpec& out);
// Where it also beats im2col (measured, above): up to 48 input channels, wide maps.
bool conv_rows_wins(const ConvShape& s, const PackedWeights& w, const VariantKernels& vk, const OutputSpec& out);
// Scratch on `threads` threads (with the colterm's, which the caller allocates).
size_t conv_rows_scratch_bytes(const ConvShape& s, const PackedWeights& w, int threads);

struct ConvRowsArgs {
  const ConvShape* s;
  const PackedWeights* w;
  const VariantKernels* vk;   // the active variant (the weights' own kernels are picked inside)
  const uint8_t* x;           // NHWC input bytes
  uint8_t x_xor;              // 0x80 for int8 activations
  uint8_t pad;                // the input's zero point as a byte
  const int32_t* colterm;     // gemm_column_terms of w
  const OutputSpec* out;
  uint8_t* y;
};
// Runs the convolution (conv_rows_suits must hold). The arena must hold conv_rows_scratch_bytes.
Status conv_rows(const ConvRowsArgs& a, Arena& arena, ThreadPool* pool);

}  // namespace edge::kernels

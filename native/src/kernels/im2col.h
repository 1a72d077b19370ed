#pragma once
// The rows of an im2col convolution (conv.cc): for a run of output pixels, each pixel's
// receptive field laid out as one row of kernel_h * kernel_w * (C / groups) bytes, in the
// packed weights' k order (ky, kx, channel), with the zero-point byte where the window
// leaves the image.
//
// Few input channels (the RGB first layer of a CNN: a 3x3 kernel row is 9 bytes, a 7x7 one
// 21) make that a copy of a few bytes per kernel row, and a copy sized at run time cost more
// than the copying: MobileNetV2's 224x224x3 stem spent 93 of its 193 us building rows, the
// YOLO-like detector's 320x320x3 one 170 of 335 us, ResNet18's 7x7 one 180 of 620 us. Where a
// kernel row is at most 64 bytes, interior pixels are built with fixed 16-, 32- or 64-byte
// moves instead (YOLO's 3x3 layers on 16 channels, 48-byte kernel rows, went from 186 to
// 116 us at 80x80x16->16 with 64-byte moves): each may write past its kernel row (the next kernel row or the next im2col row
// then overwrites those bytes, so rows are built in order and the buffer has kIm2colSlack
// bytes after the last row) and read past it in the input (only while those bytes are inside
// the input; the pixel falls back to exact copies near its end).
#include <cstddef>
#include <cstdint>

#include "kernels/conv.h"

namespace edge::kernels {

// Bytes an im2col buffer needs after its last row.
constexpr size_t kIm2colSlack = 64;

struct Im2colArgs {
  const ConvShape* shape = nullptr;
  const uint8_t* x = nullptr;  // the whole NHWC input (every image of the batch)
  int group = 0;               // channels [group * C/groups, (group + 1) * C/groups)
  uint8_t pad = 0;             // the input's zero point
};

// Rows for output pixels [first, first + rows) (pixel = (n * OH + oh) * OW + ow) into
// a[r * Kg ...], Kg = kernel_h * kernel_w * C / groups; a has rows * Kg + kIm2colSlack bytes.
void im2col_rows(const Im2colArgs& args, int first, int rows, uint8_t* a);

}  // namespace edge::kernels

#include "kernels/im2col.h"

#include <cstring>

namespace edge::kernels {

namespace {

// Small copies (a few channels per tap) inline: a library call per tap costs more. From 4
// bytes on, two fixed-size moves that overlap in the middle.
// dst and src never overlap (an im2col row and the input).
template <int B>
inline void move_pair(uint8_t* dst, const uint8_t* src, int n) {
  std::memcpy(dst, src, B);
  std::memcpy(dst + n - B, src + n - B, B);
}
inline void copy_bytes(uint8_t* dst, const uint8_t* src, int n) {
  if (n >= 64) {
    std::memcpy(dst, src, n);
  } else if (n >= 32) {
    move_pair<32>(dst, src, n);
  } else if (n >= 16) {
    move_pair<16>(dst, src, n);
  } else if (n >= 8) {
    move_pair<8>(dst, src, n);
  } else if (n >= 4) {
    move_pair<4>(dst, src, n);
  } else {
    for (int i = 0; i < n; ++i) dst[i] = src[i];
  }
}
inline void fill_bytes(uint8_t* dst, uint8_t v, int n) {
  if (n >= 64) {
    std::memset(dst, v, n);
    return;
  }
  for (int i = 0; i < n; ++i) dst[i] = v;
}

// MOVE: 0 (exact copies) or the fixed move width (16, 32 or 64) for kernel rows of <= MOVE bytes.
template <int MOVE>
void build(const Im2colArgs& args, int first, int rows, uint8_t* a) {
  const ConvShape& s = *args.shape;
  // Locals, not s.*: byte stores may alias anything, so fields would be reloaded per byte.
  const int H = s.H, W = s.W, C = s.C, kh = s.kernel_h, kw = s.kernel_w, sh = s.stride_h, sw = s.stride_w;
  const int pt = s.pad_top, pl = s.pad_left, dh = s.dilation_h, dw = s.dilation_w;
  const int cg = C / s.groups, gc = args.group * cg, OH = s.out_h(), OW = s.out_w();
  const int Kg = kh * kw * cg;
  // One group with unit horizontal dilation: a kernel row's taps are adjacent in NHWC.
  const bool contiguous_taps = s.groups == 1 && dw == 1;
  const int span = kw * cg;
  const size_t row_step = static_cast<size_t>(dh) * W * C;
  const uint8_t pb = args.pad;
  const uint8_t* const xb = args.x;
  // The last input byte a fixed move may read: the last kernel row's move must end inside the input.
  const uint8_t* const x_end = xb + static_cast<size_t>(s.batch) * H * W * C;
  const size_t last_row_off = static_cast<size_t>(kh - 1) * row_step;
  int n = first / (OH * OW), oh = (first / OW) % OH, ow = first % OW;
  for (int r = 0; r < rows; ++r) {
    uint8_t* row = a + static_cast<size_t>(r) * Kg;
    const int ih0 = oh * sh - pt, iw0 = ow * sw - pl;
    const bool interior = ih0 >= 0 && ih0 + (kh - 1) * dh < H && iw0 >= 0 && iw0 + (kw - 1) * dw < W;
    if (interior && contiguous_taps) {
      // Away from the border, one kernel row is kernel_w * C contiguous input bytes.
      const uint8_t* src = xb + ((static_cast<size_t>(n) * H + ih0) * W + iw0) * C;
      if (MOVE > 0 && kh == 3 && src + last_row_off + MOVE <= x_end) {
        // 3x3 stems: the three loads before the three stores, so no load waits behind a store
        // it might alias (224x224x3->16 stride 2: 107 -> 100 us, 320x320x3->16: 215 -> 202 us).
        uint8_t t0[MOVE > 0 ? MOVE : 1], t1[MOVE > 0 ? MOVE : 1], t2[MOVE > 0 ? MOVE : 1];
        std::memcpy(t0, src, MOVE);
        std::memcpy(t1, src + row_step, MOVE);
        std::memcpy(t2, src + 2 * row_step, MOVE);
        std::memcpy(row, t0, MOVE);
        std::memcpy(row + span, t1, MOVE);
        std::memcpy(row + 2 * span, t2, MOVE);
      } else if (MOVE > 0 && src + last_row_off + MOVE <= x_end) {
        for (int ky = 0; ky < kh; ++ky, row += span, src += row_step) std::memcpy(row, src, MOVE);
      } else {
        for (int ky = 0; ky < kh; ++ky, row += span, src += row_step) copy_bytes(row, src, span);
      }
    } else {
      for (int ky = 0; ky < kh; ++ky) {
        const int ih = ih0 + ky * dh;
        for (int kx = 0; kx < kw; ++kx, row += cg) {
          const int iw = iw0 + kx * dw;
          if (ih < 0 || ih >= H || iw < 0 || iw >= W) {
            fill_bytes(row, pb, cg);
          } else {
            copy_bytes(row, xb + ((static_cast<size_t>(n) * H + ih) * W + iw) * C + gc, cg);
          }
        }
      }
    }
    if (++ow == OW) {
      ow = 0;
      if (++oh == OH) oh = 0, ++n;
    }
  }
}

}  // namespace

void im2col_rows(const Im2colArgs& args, int first, int rows, uint8_t* a) {
  const ConvShape& s = *args.shape;
  const int span = s.kernel_w * (s.C / s.groups);
  const bool contiguous_taps = s.groups == 1 && s.dilation_w == 1;
  static_assert(kIm2colSlack >= 64, "a 64-byte move may write 63 bytes past a row");
  if (contiguous_taps && span <= 16) return build<16>(args, first, rows, a);
  if (contiguous_taps && span <= 32) return build<32>(args, first, rows, a);
  if (contiguous_taps && span <= 64) return build<64>(args, first, rows, a);
  build<0>(args, first, rows, a);
}

}  // namespace edge::kernels

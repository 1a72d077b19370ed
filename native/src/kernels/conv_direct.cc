// The direct small-channel convolution: weight layout, dispatch, and the scalar reference.
#include "kernels/conv_direct.h"

#include <algorithm>
#include <cstring>

#include "kernels/variant_table.h"

namespace edge::kernels {

DirectConv::DirectConv(const ConvShape& s, const int8_t* w, const int32_t* bias, const float* scales, int scale_count)
    : s_(s), vk_(&active_kernels()) {
  const int M = s.out_channels, C = s.C, KH = s.kernel_h, KW = s.kernel_w;
  Mp_ = (M + 7) & ~7;
  w_.assign(static_cast<size_t>(KH) * KW * C * Mp_, 0.0f);
  for (int m = 0; m < M; ++m)
    for (int c = 0; c < C; ++c)
      for (int kh = 0; kh < KH; ++kh)
        for (int kw = 0; kw < KW; ++kw)
          w_[((static_cast<size_t>(kh) * KW + kw) * C + c) * Mp_ + m] = w[((static_cast<size_t>(m) * C + c) * KH + kh) * KW + kw];
  bias_.assign(Mp_, 0);
  scales_.assign(Mp_, 1.0f);
  for (int m = 0; m < M; ++m) {
    bias_[m] = bias ? bias[m] : 0;
    scales_[m] = scales[scale_count > 1 ? m : 0];
  }
}

Variant DirectConv::variant() const { return vk_->variant; }

void DirectConv::run(const uint8_t* x, int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi, uint8_t* y,
                     float* scratch) const {
  DirectConvArgs a{&s_, s_.out_h(), s_.out_w(), Mp_, w_.data(), bias_.data(), scales_.data(), x, x_zp, y_zp, lo, hi, y, scratch};
  vk_->direct_conv(a);
}

// Bands of 8 output rows: enough tasks to balance two to four threads on a 112-row first layer,
// few enough that the rows a band re-reads at its edges stay a small share.
int DirectConv::band_rows() const { return 8; }

size_t DirectConv::band_floats() const {
  const int in_rows = (band_rows() - 1) * s_.stride_h + (s_.kernel_h - 1) * s_.dilation_h + 1;
  const size_t f = static_cast<size_t>(in_rows) * (s_.W + s_.pad_left + s_.pad_right) * s_.C + Mp_ + 8;
  return (f + 15) & ~size_t(15);
}

void DirectConv::run(const uint8_t* x, int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi, uint8_t* y, float* scratch,
                     ThreadPool* pool) const {
  const int threads = pool_threads(pool);
  if (!banded(threads)) {
    run(x, x_zp, y_zp, lo, hi, y, scratch);
    return;
  }
  const int OH = s_.out_h(), OW = s_.out_w(), R = band_rows();
  const int bands = (OH + R - 1) / R;
  const size_t stride = band_floats();
  auto task = [&](int t, int thread) {
    const int n = t / bands, oh0 = (t % bands) * R, oh1 = std::min(OH, oh0 + R);
    // Input rows [first, end) that output rows [oh0, oh1) read, padding included.
    const int first = oh0 * s_.stride_h - s_.pad_top;
    const int end = (oh1 - 1) * s_.stride_h - s_.pad_top + (s_.kernel_h - 1) * s_.dilation_h + 1;
    const int lo_row = std::max(0, first), hi_row = std::min(s_.H, end);
    ConvShape sub = s_;
    sub.batch = 1;
    sub.H = hi_row - lo_row;
    sub.pad_top = lo_row - first;
    sub.pad_bottom = end - hi_row;
    const uint8_t* xb = x + (static_cast<size_t>(n) * s_.H + lo_row) * s_.W * s_.C;
    uint8_t* yb = y + (static_cast<size_t>(n) * OH + oh0) * OW * s_.out_channels;
    DirectConvArgs a{&sub, oh1 - oh0, OW, Mp_, w_.data(), bias_.data(), scales_.data(), xb, x_zp, y_zp, lo, hi, yb,
                     scratch + thread * stride};
    vk_->direct_conv(a);
  };
  parallel_for(pool, s_.batch * bands, task);
}

// Portable reference: one output pixel at a time, bounds-checked taps (padding is the zero
// point and contributes 0), float accumulators in scratch.
void direct_conv_scalar(const DirectConvArgs& a) {
  const ConvShape& s = *a.s;
  const int M = s.out_channels, C = s.C, OH = a.OH, OW = a.OW, Mp = a.Mp;
  float* acc = a.scratch;
  for (int n = 0; n < s.batch; ++n) {
    const uint8_t* xn = a.x + static_cast<size_t>(n) * s.H * s.W * C;
    for (int oh = 0; oh < OH; ++oh) {
      for (int ow = 0; ow < OW; ++ow) {
        uint8_t* out = a.y + ((static_cast<size_t>(n) * OH + oh) * OW + ow) * M;
        std::memset(acc, 0, sizeof(float) * Mp);
        for (int kh = 0; kh < s.kernel_h; ++kh) {
          const int ih = oh * s.stride_h - s.pad_top + kh * s.dilation_h;
          if (ih < 0 || ih >= s.H) continue;
          for (int kw = 0; kw < s.kernel_w; ++kw) {
            const int iw = ow * s.stride_w - s.pad_left + kw * s.dilation_w;
            if (iw < 0 || iw >= s.W) continue;
            const uint8_t* px = xn + (static_cast<size_t>(ih) * s.W + iw) * C;
            const float* wt = a.w + (static_cast<size_t>(kh) * s.kernel_w + kw) * C * Mp;
            for (int c = 0; c < C; ++c) {
              const float xv = static_cast<float>(static_cast<int32_t>(px[c]) - a.x_zp);
              const float* wc = wt + static_cast<size_t>(c) * Mp;
              for (int m = 0; m < Mp; ++m) acc[m] += xv * wc[m];
            }
          }
        }
        for (int m = 0; m < M; ++m) {
          // Wrapping int32 addition, as the vector lanes do.
          const int32_t v = static_cast<int32_t>(static_cast<uint32_t>(static_cast<int32_t>(acc[m])) +
                                                 static_cast<uint32_t>(a.bias[m]));
          out[m] = static_cast<uint8_t>(requantize_scalar(v, a.scales[m], a.y_zp, a.lo, a.hi));
        }
      }
    }
  }
}

}  // namespace edge::kernels

// Transposed convolution: every variant (its GEMM plus the integer scatter) equals
// ref::conv_transpose exactly, and the oracle equals the ONNX definition spot-checked here.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "kernels/kernels.h"
#include "test_util.h"

namespace edge::test {
using namespace edge::kernels;

void run_deconv_tests(Rng& rng, int cases) {
  std::vector<uint8_t> scratch;
  for (int i = 0; i < cases / 6 + 12; ++i) {
    DeconvShape s;
    s.batch = rng.uniform(1, 2);
    s.group = rng.uniform(0, 3) ? 1 : rng.uniform(2, 3);
    s.C = s.group * rng.uniform(1, 9);
    s.M = s.group * rng.uniform(1, 9);
    s.H = rng.uniform(1, 7);
    s.W = rng.uniform(1, 7);
    if (i < 4 || rng.uniform(0, 2) == 0) {  // PP-OCR det's FPN: kernel 2, stride 2
      s.KH = s.KW = 2;
      s.stride_h = s.stride_w = 2;
    } else {
      s.KH = rng.uniform(1, 4);
      s.KW = rng.uniform(1, 4);
      s.stride_h = rng.uniform(1, 3);
      s.stride_w = rng.uniform(1, 3);
      s.dil_h = rng.uniform(1, 2);
      s.dil_w = rng.uniform(1, 2);
      s.pad_top = rng.uniform(0, s.KH - 1);
      s.pad_left = rng.uniform(0, s.KW - 1);
      s.pad_bottom = rng.uniform(0, s.KH - 1);
      s.pad_right = rng.uniform(0, s.KW - 1);
      s.out_pad_h = rng.uniform(0, std::max(s.stride_h, s.dil_h) - 1);
      s.out_pad_w = rng.uniform(0, std::max(s.stride_w, s.dil_w) - 1);
    }
    if (deconv_shape_error(s)) continue;
    const int OH = s.out_h(), OW = s.out_w();
    const size_t xn = static_cast<size_t>(s.batch) * s.H * s.W * s.C, yn = static_cast<size_t>(s.batch) * OH * OW * s.M;
    const size_t wn = static_cast<size_t>(s.C) * (s.M / s.group) * s.KH * s.KW;
    GuardedBuffer x(xn), y(yn), yr(yn);
    std::vector<int8_t> w(wn);
    std::vector<int32_t> bias(s.M);
    std::vector<float> scales(s.M);
    for (size_t j = 0; j < xn; ++j) x.as()[j] = static_cast<uint8_t>(rng.next());
    for (auto& v : w) v = static_cast<int8_t>(rng.uniform(-128, 127));
    for (auto& v : bias) v = rng.uniform(-5000, 5000);
    const bool per_channel = rng.uniform(0, 1);
    for (auto& v : scales) v = 1.0f / (200.0f + rng.unit() * 4000.0f);
    const int32_t x_zp = rng.uniform(0, 255);
    OutputSpec out = OutputSpec::quantized(QType::U8, scales.data(), per_channel ? s.M : 1, rng.uniform(0, 255));
    if (rng.uniform(0, 3) == 0) out.clamp_min = out.zero_point;  // a fused ReLU
    std::unique_ptr<PackedDeconv> p;
    Status st = PackedDeconv::pack(s, w.data(), &p);
    const int threads = rng.uniform(1, 2);
    ThreadPool pool(threads);
    if (st.ok()) {
      scratch.assign(deconv_scratch_bytes(*p, threads), 0);
      Arena arena(scratch.data(), scratch.size());
      st = conv_transpose(*p, x.as(), x_zp, bias.data(), out, y.as(), arena, &pool);
    }
    ref::conv_transpose(s, x.as(), x_zp, w.data(), bias.data(), out, yr.as());
    bool same = st.ok();
    for (size_t j = 0; j < yn && same; ++j) same = y.as()[j] == yr.as()[j];
    // The oracle against the definition at a few output points: gather instead of scatter.
    bool formula = true;
    const int Cg = s.C / s.group, Mg = s.M / s.group;
    for (int c = 0; c < 6; ++c) {
      const int n = rng.uniform(0, s.batch - 1), oy = rng.uniform(0, OH - 1), ox = rng.uniform(0, OW - 1), m = rng.uniform(0, s.M - 1);
      const int g = m / Mg;
      int64_t acc = bias[m];
      for (int ky = 0; ky < s.KH; ++ky)
        for (int kx = 0; kx < s.KW; ++kx) {
          const int ty = oy + s.pad_top - ky * s.dil_h, tx = ox + s.pad_left - kx * s.dil_w;
          if (ty < 0 || tx < 0 || ty % s.stride_h || tx % s.stride_w) continue;
          const int iy = ty / s.stride_h, ix = tx / s.stride_w;
          if (iy >= s.H || ix >= s.W) continue;
          for (int ci = g * Cg; ci < (g + 1) * Cg; ++ci) {
            acc += static_cast<int64_t>(x.as()[((static_cast<size_t>(n) * s.H + iy) * s.W + ix) * s.C + ci] - x_zp) *
                   w[((static_cast<size_t>(ci) * Mg + (m - g * Mg)) * s.KH + ky) * s.KW + kx];
          }
        }
      float f = static_cast<float>(acc) * scales[per_channel ? m : 0];
      f = std::min(std::max(f, static_cast<float>(out.clamp_min - out.zero_point)), static_cast<float>(out.clamp_max - out.zero_point));
      formula = formula && yr.as()[((static_cast<size_t>(n) * OH + oy) * OW + ox) * s.M + m] == static_cast<int>(std::nearbyint(f)) + out.zero_point;
    }
    expect(same && formula, fmt("conv_transpose %s %dx%dx%d -> M=%d k=%dx%d s=%dx%d d=%dx%d pads=%d,%d,%d,%d opad=%d,%d g=%d: %s",
                                active_variant_name(), s.H, s.W, s.C, s.M, s.KH, s.KW, s.stride_h, s.stride_w, s.dil_h, s.dil_w,
                                s.pad_top, s.pad_left, s.pad_bottom, s.pad_right, s.out_pad_h, s.out_pad_w, s.group,
                                !st.ok() ? st.error : !same ? "differs from ref::conv_transpose" : "oracle differs from the definition"));
  }
  DeconvShape bad;
  bad.H = bad.W = bad.C = bad.M = 2;
  bad.group = 3;
  expect(deconv_shape_error(bad) != nullptr, "conv_transpose refuses channels that do not divide by group");
  bad.group = 1;
  bad.stride_h = 2;
  bad.out_pad_h = 2;
  expect(deconv_shape_error(bad) != nullptr, "conv_transpose refuses output padding not below the stride");
}

}  // namespace edge::test

// The small-shape families the engine uses around the GEMM kernels (variant_table.h:
// direct_conv, quantize_u8, max_pool_2x2): every variant bit for bit against the scalar
// references (ref::conv, ref::quantize_u8, ref::max_pool) and against the scalar variant's own
// loop, on random shapes: odd channel counts, 1..32 output channels, strides, padding,
// dilation, vector tails, strided (NCHW -> NHWC) quantization, NaN/infinity/ties.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "kernels/kernels.h"
#include "kernels/variant_table.h"
#include "test_util.h"

namespace edge::test {
using namespace edge::kernels;

namespace {

// A DirectConv built with `v` active (the variant is fixed at construction), then the active
// variant restored.
std::unique_ptr<DirectConv> make_direct(Variant v, const ConvShape& s, const int8_t* w, const int32_t* bias,
                                        const float* scales, int count) {
  const Variant was = active_variant();
  (void)set_active_variant(v);
  auto dc = std::make_unique<DirectConv>(s, w, bias, scales, count);
  (void)set_active_variant(was);
  return dc;
}

void run_direct_case(Rng& rng, const ConvShape& s) {
  const int M = s.out_channels, OH = s.out_h(), OW = s.out_w();
  const size_t xn = static_cast<size_t>(s.batch) * s.H * s.W * s.C;
  const size_t wn = static_cast<size_t>(M) * s.C * s.kernel_h * s.kernel_w;
  const size_t yn = static_cast<size_t>(s.batch) * OH * OW * M;
  GuardedBuffer x(xn), w(wn), y(yn), ys(yn), yr(yn);
  for (size_t i = 0; i < xn; ++i) x.as()[i] = static_cast<uint8_t>(rng.next());
  // Full-range weights (-128 included): the largest products the float sums must hold exactly.
  for (size_t i = 0; i < wn; ++i) w.as<int8_t>()[i] = static_cast<int8_t>(rng.next());
  std::vector<int32_t> bias(M);
  for (auto& b : bias) b = rng.uniform(-50000, 50000);
  std::vector<float> scales(rng.uniform(0, 1) ? M : 1);
  for (auto& sc : scales) sc = std::ldexp(1.0f + rng.unit(), rng.uniform(-16, -6));
  const bool use_bias = rng.uniform(0, 3) != 0;
  const int32_t xzp = rng.uniform(0, 255), yzp = rng.uniform(0, 255);
  int32_t lo = 0, hi = 255;
  switch (rng.uniform(0, 2)) {
    case 0: lo = yzp; break;                                                         // ReLU
    case 1: lo = rng.uniform(0, yzp); hi = rng.uniform(yzp, 255); break;             // Clip
    default: break;
  }
  const std::string what = fmt("direct_conv[%s] n=%d %dx%dx%d oc=%d k=%dx%d s=%d,%d p=%d,%d,%d,%d d=%d,%d scales=%zu bias=%d "
                               "xzp=%d yzp=%d clamp=%d..%d",
                               active_variant_name(), s.batch, s.H, s.W, s.C, M, s.kernel_h, s.kernel_w, s.stride_h,
                               s.stride_w, s.pad_top, s.pad_left, s.pad_bottom, s.pad_right, s.dilation_h, s.dilation_w,
                               scales.size(), use_bias, xzp, yzp, lo, hi);
  const int32_t* b = use_bias ? bias.data() : nullptr;
  const int count = static_cast<int>(scales.size());
  auto dc = make_direct(active_variant(), s, w.as<int8_t>(), b, scales.data(), count);
  auto sc = make_direct(Variant::Scalar, s, w.as<int8_t>(), b, scales.data(), count);
  if (!expect(dc->variant() == active_variant(), what + ": built for the active variant")) return;
  GuardedBuffer scratch(dc->scratch_floats() * sizeof(float)), scratch_s(sc->scratch_floats() * sizeof(float));
  dc->run(x.as(), xzp, yzp, lo, hi, y.as(), scratch.as<float>());
  sc->run(x.as(), xzp, yzp, lo, hi, ys.as(), scratch_s.as<float>());
  OutputSpec o = OutputSpec::quantized(QType::U8, scales.data(), count, yzp);
  o.clamp_min = lo;
  o.clamp_max = hi;
  ref::conv(s, x.as(), QType::U8, xzp, w.as<int8_t>(), nullptr, 1, b, o, yr.as());
  // The same conv split in bands of output rows across three threads.
  static ThreadPool pool(3);
  GuardedBuffer yt(yn), scratch_t(dc->scratch_floats(pool.threads()) * sizeof(float));
  dc->run(x.as(), xzp, yzp, lo, hi, yt.as(), scratch_t.as<float>(), &pool);
  size_t bad = yn;
  for (size_t i = 0; i < yn && bad == yn; ++i)
    if (y.as()[i] != yr.as()[i] || ys.as()[i] != yr.as()[i] || yt.as()[i] != yr.as()[i]) bad = i;
  expect(bad == yn, bad == yn ? what
                              : what + fmt(": at %zu got %d, scalar variant %d, 3 threads %d, ref %d", bad, y.as()[bad],
                                           ys.as()[bad], yt.as()[bad], yr.as()[bad]));
}

void run_direct_tests(Rng& rng, int cases) {
  // The engine's first layers: 3x3 pad 1 (stride 1 and 2), 5x5 pad 2, 1 or 3 input channels.
  const struct { int H, W, C, M, k, stride, pad; } fixed[] = {
      {28, 28, 1, 8, 3, 1, 1}, {28, 28, 1, 16, 5, 1, 2}, {32, 32, 3, 16, 3, 1, 1}, {32, 32, 3, 32, 3, 2, 1},
      {7, 9, 4, 3, 3, 2, 0},   {1, 1, 1, 1, 1, 1, 0},    {5, 5, 2, 31, 5, 1, 2},   {6, 3, 3, 17, 2, 3, 1},
  };
  for (const auto& f : fixed) {
    ConvShape s;
    s.H = f.H; s.W = f.W; s.C = f.C; s.out_channels = f.M; s.kernel_h = s.kernel_w = f.k;
    s.stride_h = s.stride_w = f.stride; s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = f.pad;
    if (expect(!check_conv_shape(s) && DirectConv::suits(s), fmt("fixed direct shape %dx%dx%d k%d suits", f.H, f.W, f.C, f.k)))
      run_direct_case(rng, s);
  }
  int done = 0;
  for (int tries = 0; done < cases / 2 + 20 && tries < cases * 20; ++tries) {
    ConvShape s;
    s.batch = rng.uniform(1, 2);
    s.H = rng.uniform(1, 20);
    s.W = rng.uniform(1, 20);
    s.C = rng.uniform(1, 4);
    s.out_channels = rng.uniform(1, 32);
    s.kernel_h = rng.uniform(1, 5);
    s.kernel_w = rng.uniform(1, 5);
    s.stride_h = rng.uniform(1, 3);
    s.stride_w = rng.uniform(1, 3);
    s.dilation_h = rng.uniform(0, 3) == 0 ? 2 : 1;
    s.dilation_w = rng.uniform(0, 3) == 0 ? 2 : 1;
    s.pad_top = rng.uniform(0, 2);
    s.pad_left = rng.uniform(0, 2);
    s.pad_bottom = rng.uniform(0, 2);
    s.pad_right = rng.uniform(0, 2);
    if (check_conv_shape(s) || !DirectConv::suits(s)) continue;
    ++done;
    run_direct_case(rng, s);
  }
  expect(done >= cases / 2 + 20, fmt("direct_conv: %d random shapes tried", done));
  // What the engine leaves to im2col + GEMM.
  ConvShape big;
  big.H = big.W = 8; big.C = 5; big.out_channels = 8; big.kernel_h = big.kernel_w = 3;
  expect(!DirectConv::suits(big), "direct_conv: 5 input channels go to im2col");
  big.C = 1; big.out_channels = 33;
  expect(!DirectConv::suits(big), "direct_conv: 33 output channels go to im2col");
  big.out_channels = 8; big.kernel_h = big.kernel_w = 13;
  expect(!DirectConv::suits(big), "direct_conv: more than 160 taps go to im2col");
}

float quantize_input(Rng& rng, float scale) {
  switch (rng.uniform(0, 9)) {
    case 0: return std::numeric_limits<float>::quiet_NaN();
    case 1: return rng.uniform(0, 1) ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
    case 2: return (static_cast<float>(rng.uniform(-300, 300)) + 0.5f) * scale;  // ties (exact for power-of-two scales)
    case 3: return rng.uniform(0, 1) ? 0.0f : -0.0f;
    case 4: return (rng.unit() - 0.5f) * 1e30f;
    default: return (rng.unit() * 600.0f - 300.0f) * scale;
  }
}

void run_quantize_strided_tests(Rng& rng, int cases) {
  for (int it = 0; it < cases / 2 + 20; ++it) {
    const size_t n = static_cast<size_t>(it < 20 ? it : rng.uniform(0, 200));
    const size_t stride = static_cast<size_t>(rng.uniform(0, 2) == 0 ? rng.uniform(2, 4) : 1);
    const float scale = rng.uniform(0, 1) ? std::ldexp(1.0f, rng.uniform(-8, 2)) : std::ldexp(1.0f + rng.unit(), rng.uniform(-10, 0));
    const int32_t zp = rng.pick(std::vector<int32_t>{0, 1, 127, 128, 200, 255, rng.uniform(0, 255)});
    GuardedBuffer x(n * sizeof(float)), y(n ? (n - 1) * stride + 1 : 0), ys(n ? (n - 1) * stride + 1 : 0);
    for (size_t i = 0; i < n; ++i) x.as<float>()[i] = quantize_input(rng, scale);
    quantize_u8_strided(x.as<float>(), n, scale, zp, y.as(), stride);
    quantize_u8_scalar(x.as<float>(), n, scale, zp, ys.as(), stride);
    const std::string what = fmt("quantize_u8[%s] n=%zu stride=%zu scale=%g zp=%d", active_variant_name(), n, stride, scale, zp);
    bool ok = true;
    std::string why;
    for (size_t j = 0; j < y.size() && ok; ++j) {
      if (j % stride != 0) {
        ok = y.as()[j] == 0xA5;  // GuardedBuffer's fill: the gaps belong to other channels
        if (!ok) why = fmt(": wrote the gap at %zu", j);
        continue;
      }
      const float xv = x.as<float>()[j / stride];
      const uint8_t want = ref::quantize_u8(xv, scale, zp);
      ok = y.as()[j] == want && ys.as()[j] == want;
      if (!ok) why = fmt(": x[%zu]=%.9g got %d, scalar variant %d, ref %d", j / stride, xv, y.as()[j], ys.as()[j], want);
    }
    expect(ok, what + why);
  }
}

// Three planes into interleaved bytes (quantize_u8_planes3, an RGB input's NCHW -> NHWC move):
// every byte as ref::quantize_u8 gives it, for counts around the kernels' 16-pixel blocks and
// longer rows. Each plane and the output are guarded buffers of exactly their size, so a read
// or write past them crashes.
void run_quantize_planes3_tests(Rng& rng, int cases) {
  for (int it = 0; it < cases / 4 + 40; ++it) {
    const size_t n = static_cast<size_t>(it < 40 ? it : rng.uniform(0, 1) ? rng.uniform(0, 100) : rng.uniform(100, 5000));
    const float scale = rng.uniform(0, 1) ? std::ldexp(1.0f, rng.uniform(-8, 2)) : std::ldexp(1.0f + rng.unit(), rng.uniform(-10, 0));
    const int32_t zp = rng.pick(std::vector<int32_t>{0, 1, 127, 128, 200, 255, rng.uniform(0, 255)});
    GuardedBuffer p0(n * sizeof(float)), p1(n * sizeof(float)), p2(n * sizeof(float)), y(3 * n);
    float* planes[3] = {p0.as<float>(), p1.as<float>(), p2.as<float>()};
    for (float* p : planes)
      for (size_t i = 0; i < n; ++i) p[i] = quantize_input(rng, scale);
    const float* const in[3] = {planes[0], planes[1], planes[2]};
    quantize_u8_planes3(in, n, scale, zp, y.as());
    std::string why;
    for (size_t j = 0; j < 3 * n && why.empty(); ++j) {
      const float xv = planes[j % 3][j / 3];
      const uint8_t want = ref::quantize_u8(xv, scale, zp);
      if (y.as()[j] != want) why = fmt(": pixel %zu channel %zu x=%.9g got %d, ref %d", j / 3, j % 3, xv, y.as()[j], want);
    }
    expect(why.empty(), fmt("quantize_u8_planes3[%s] n=%zu scale=%g zp=%d", active_variant_name(), n, scale, zp) + why);
  }
}

void run_max_pool_2x2_tests(Rng& rng, int cases) {
  static const std::vector<int> kChannels = {1, 3, 7, 8, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 70};
  for (int it = 0; it < cases / 4 + 20; ++it) {
    PoolShape p;
    p.batch = rng.uniform(1, 2);
    p.H = rng.uniform(2, 17);
    p.W = rng.uniform(2, 17);
    p.C = rng.uniform(0, 1) ? rng.pick(kChannels) : rng.uniform(1, 70);
    p.kernel_h = p.kernel_w = 2;
    p.stride_h = p.stride_w = 2;
    const std::string what = fmt("max_pool_2x2[%s] n=%d %dx%dx%d", active_variant_name(), p.batch, p.H, p.W, p.C);
    if (!expect(max_pool_2x2_suits(p) && !check_pool_shape(p), what + " suits")) continue;
    const size_t xn = static_cast<size_t>(p.batch) * p.H * p.W * p.C, yn = static_cast<size_t>(p.batch) * p.out_h() * p.out_w() * p.C;
    GuardedBuffer x(xn), y(yn), ys(yn), yr(yn);
    for (size_t i = 0; i < xn; ++i) x.as()[i] = static_cast<uint8_t>(rng.next());
    max_pool_2x2(p, x.as(), y.as());
    max_pool_2x2_scalar(p, x.as(), ys.as());
    ref::max_pool(p, x.as(), QType::U8, yr.as());
    expect(std::memcmp(y.as(), yr.as(), yn) == 0 && std::memcmp(ys.as(), yr.as(), yn) == 0, what);
  }
  PoolShape q;
  q.H = q.W = 8; q.C = 4; q.kernel_h = q.kernel_w = 2; q.stride_h = q.stride_w = 2; q.pad_top = 1;
  expect(!max_pool_2x2_suits(q), "max_pool_2x2: padding goes to max_pool");
  q.pad_top = 0; q.stride_w = 1;
  expect(!max_pool_2x2_suits(q), "max_pool_2x2: stride 1 goes to max_pool");
}

}  // namespace

void run_small_shape_tests(Rng& rng, int cases) {
  run_direct_tests(rng, cases);
  run_quantize_strided_tests(rng, cases);
  run_quantize_planes3_tests(rng, cases);
  run_max_pool_2x2_tests(rng, cases);
}

}  // namespace edge::test

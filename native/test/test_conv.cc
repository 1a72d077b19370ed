// Convolution: random regular, grouped, strided, dilated, padded, pointwise and depthwise
// shapes against ref::conv, plus the MobileNet v2 depthwise 3x3 shapes at small resolution.
#include <cmath>

#include "kernels/kernels.h"
#include "test_util.h"

namespace edge::test {
using namespace edge::kernels;

namespace {
ThreadPool& pool2() {
  static ThreadPool p(2);
  return p;
}

// narrow: weights within 7 bits, [-64, 63] (AVX2 packs pointwise / im2col layers for vpmaddubsw).
bool run_conv(Rng& rng, const ConvShape& s, bool threads, bool narrow = false) {
  static const std::vector<int32_t> kZps = {0, 18, 75, 128, 157, 231, 255};
  const QType xt = rng.uniform(0, 3) == 0 ? QType::S8 : QType::U8;
  const int32_t xzp = rng.pick(kZps) - (xt == QType::S8 ? 128 : 0);
  const int Cg = s.C / s.groups, OH = s.out_h(), OW = s.out_w();
  const size_t xn = static_cast<size_t>(s.batch) * s.H * s.W * s.C;
  const size_t wn = static_cast<size_t>(s.out_channels) * Cg * s.kernel_h * s.kernel_w;
  const size_t yn = static_cast<size_t>(s.batch) * OH * OW * s.out_channels;
  const int o = rng.uniform(0, 4);
  const OutputSpec::Kind kind = o == 0 ? OutputSpec::Kind::Int32 : o == 1 ? OutputSpec::Kind::S8 : OutputSpec::Kind::U8;
  const size_t es = kind == OutputSpec::Kind::Int32 ? 4 : 1;
  GuardedBuffer x(xn), w(wn), y(yn * es), yr(yn * es);
  for (size_t i = 0; i < xn; ++i) x.as()[i] = static_cast<uint8_t>(rng.next());
  for (size_t i = 0; i < wn; ++i)
    w.as<int8_t>()[i] = static_cast<int8_t>(narrow ? rng.uniform(-64, 63) : static_cast<int>(rng.next()));
  if (narrow && wn >= 2) {  // the extremes at least once
    w.as<int8_t>()[0] = -64;
    w.as<int8_t>()[wn - 1] = 63;
  }
  const bool wpc = rng.uniform(0, 1);
  std::vector<int32_t> wzp(wpc ? s.out_channels : 1, 0), bias(s.out_channels);
  if (rng.uniform(0, 2) == 0)
    for (auto& z : wzp) z = rng.uniform(-128, 127);
  for (auto& b : bias) b = rng.uniform(-50000, 50000);
  std::vector<float> scales(rng.uniform(0, 1) ? s.out_channels : 1);
  for (auto& sc : scales) sc = std::ldexp(1.0f + rng.unit(), rng.uniform(-16, -6));
  const int32_t yzp = kind == OutputSpec::Kind::S8 ? rng.uniform(-128, 127) : rng.pick(kZps);
  OutputSpec out = kind == OutputSpec::Kind::Int32
                       ? OutputSpec::int32()
                       : OutputSpec::quantized(kind == OutputSpec::Kind::U8 ? QType::U8 : QType::S8, scales.data(),
                                               static_cast<int>(scales.size()), yzp);
  if (kind != OutputSpec::Kind::Int32 && rng.uniform(0, 2) == 0) out.clamp_min = yzp;
  const bool use_bias = rng.uniform(0, 3) != 0;
  // A residual add fused into the output stage (ConvArgs::residual_add, the residual blocks of
  // ResNet and YOLO): the reference is ref::qadd on the reference output.
  GuardedBuffer res(yn * es);
  for (size_t i = 0; i < res.size(); ++i) res.as()[i] = static_cast<uint8_t>(rng.next());
  EltwiseArgs add;
  const bool with_res = kind != OutputSpec::Kind::Int32 && rng.uniform(0, 2) == 0;
  if (with_res) {
    add.type = kind == OutputSpec::Kind::U8 ? QType::U8 : QType::S8;
    add.a_scale = 0.02f + 0.05f * rng.unit();
    add.b_scale = 0.02f + 0.05f * rng.unit();
    add.y_scale = 0.03f + 0.08f * rng.unit();
    const int32_t lo = add.type == QType::U8 ? 0 : -128;
    add.a_zero_point = yzp;
    add.b_zero_point = lo + rng.uniform(0, 255);
    add.y_zero_point = lo + rng.uniform(0, 255);
    if (rng.uniform(0, 1)) add.clamp_min = add.y_zero_point;
    add.b = res.as();
    add.count = yn;
  }
  const std::string what =
      fmt("conv[%s]%s n=%d %dx%dx%d oc=%d k=%dx%d s=%d,%d p=%d,%d,%d,%d d=%d,%d g=%d x=%s zp=%d out=%d threads=%d",
          active_variant_name(), narrow ? " 7-bit" : "", s.batch, s.H, s.W, s.C, s.out_channels, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w,
          s.pad_top, s.pad_left, s.pad_bottom, s.pad_right, s.dilation_h, s.dilation_w, s.groups, qtype_name(xt), xzp,
          static_cast<int>(kind), threads) + (with_res ? " residual" : "");
  std::unique_ptr<PackedConv> pc;
  Status st = pack_conv(s, w.as<int8_t>(), wzp.data(), static_cast<int>(wzp.size()), &pc);
  if (!expect(st.ok(), what + " pack: " + (st.error ? st.error : ""))) return false;
  const char* q7 = std::getenv("EDGE_AVX2_Q7");  // "0" turns the 7-bit kernel off
  if (narrow && active_variant() == Variant::Avx2 && pc->algo() != PackedConv::Algo::Depthwise &&
      (q7 == nullptr || std::strcmp(q7, "0") != 0) &&
      !expect(pc->group_weights()[0]->narrow(), what + " packed for the 7-bit kernel"))
    return false;
  ThreadPool* pool = threads ? &pool2() : nullptr;
  const size_t scratch = conv_scratch_bytes(*pc, pool_threads(pool));
  GuardedBuffer arena_mem(scratch);
  Arena arena(arena_mem.as(), scratch);
  ConvArgs args;
  args.x = x.as();
  args.x_type = xt;
  args.x_zero_point = xzp;
  args.bias = use_bias ? bias.data() : nullptr;
  args.y = y.as();
  args.out = out;
  if (with_res) args.residual_add = &add;
  st = conv(*pc, args, arena, pool);
  if (!expect(st.ok(), what + " conv: " + (st.error ? st.error : ""))) return false;
  ref::conv(s, x.as(), xt, xzp, w.as<int8_t>(), wzp.data(), static_cast<int>(wzp.size()), use_bias ? bias.data() : nullptr,
            out, yr.as());
  if (with_res) {
    EltwiseArgs e = add;
    e.a = e.y = yr.as();
    ref::qadd(e);
  }
  for (size_t i = 0; i < y.size(); ++i)
    if (y.as()[i] != yr.as()[i]) return expect(false, what + fmt(" first mismatch at byte %zu", i));
  return expect(true, what);
}

ConvShape random_shape(Rng& rng) {
  ConvShape s;
  s.batch = rng.uniform(1, 2);
  s.H = rng.uniform(1, 12);
  s.W = rng.uniform(1, 12);
  const int kind = rng.uniform(0, 3);  // 0 regular, 1 grouped, 2 depthwise, 3 pointwise
  const int groups = kind == 1 ? rng.uniform(2, 4) : 1;
  s.C = kind == 2 ? rng.uniform(1, 40) : groups * rng.uniform(1, 12);
  s.groups = kind == 2 ? s.C : groups;
  s.out_channels = kind == 2 ? s.C : groups * rng.uniform(1, 20);
  if (kind == 3) return s;
  s.kernel_h = rng.uniform(1, 5);
  s.kernel_w = rng.uniform(1, 5);
  s.stride_h = rng.uniform(1, 3);
  s.stride_w = rng.uniform(1, 3);
  s.dilation_h = rng.uniform(1, 2);
  s.dilation_w = rng.uniform(1, 2);
  s.pad_top = rng.uniform(0, 2);
  s.pad_left = rng.uniform(0, 2);
  s.pad_bottom = rng.uniform(0, 2);
  s.pad_right = rng.uniform(0, 2);
  // Grow the input until the dilated kernel fits.
  while (check_conv_shape(s) != nullptr) {
    ++s.H;
    ++s.W;
  }
  return s;
}
}  // namespace

void run_conv_tests(Rng& rng, int cases) {
  for (int i = 0; i < cases / 2 + 20; ++i) run_conv(rng, random_shape(rng), rng.uniform(0, 3) == 0);
  for (int i = 0; i < cases / 4 + 10; ++i) run_conv(rng, random_shape(rng), rng.uniform(0, 3) == 0, /*narrow=*/true);
  // MobileNet v2's depthwise 3x3 layers (stride 1 and 2, pad 1) and MobileNetV3's and
  // PP-LCNet's 5x5 ones (pad 2) at a small resolution, inline and on 2 threads (7 or 4 rows
  // with 128+ channels: the split into channel runs, whose last run is short, 131 and 200
  // channels ending off the vector widths).
  for (int k : {3, 5}) {
    for (int C : {32, 96, 131, 144, 192, 200, 384, 576, 960}) {
      for (int stride : {1, 2}) {
        ConvShape s;
        s.H = s.W = 7;
        s.C = s.out_channels = s.groups = C;
        s.kernel_h = s.kernel_w = k;
        s.stride_h = s.stride_w = stride;
        s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = k / 2;
        run_conv(rng, s, false);
        run_conv(rng, s, true);
      }
    }
  }
  // Depthwise 3x3 and 5x5 rows long enough for the variants' multi-pixel dw_row runs (8 pixels
  // on AVX-512, 4 on AVX2 and NEON) and their single-pixel tails, channel counts off the vector
  // widths, with and without padding, one or two image rows per band.
  for (int k : {3, 5}) {
    for (int C : {8, 13, 24, 40, 67}) {
      for (int stride : {1, 2}) {
        ConvShape s;
        s.batch = rng.uniform(1, 2);
        s.H = rng.uniform(k, 9);
        s.W = rng.uniform(18, 41);
        s.C = s.out_channels = s.groups = C;
        s.kernel_h = s.kernel_w = k;
        s.stride_h = rng.uniform(1, 2);
        s.stride_w = stride;
        s.pad_top = rng.uniform(0, k / 2);
        s.pad_left = rng.uniform(0, k / 2);
        s.pad_bottom = rng.uniform(0, k / 2);
        s.pad_right = rng.uniform(0, k / 2);
        run_conv(rng, s, rng.uniform(0, 1) == 1);
      }
    }
  }
  // A stem-like 3x3 stride-2 regular conv with 3 input channels.
  ConvShape stem;
  stem.H = stem.W = 17;
  stem.C = 3;
  stem.out_channels = 32;
  stem.kernel_h = stem.kernel_w = 3;
  stem.stride_h = stem.stride_w = 2;
  stem.pad_top = stem.pad_left = stem.pad_bottom = stem.pad_right = 1;
  run_conv(rng, stem, true);
  // Few input channels, where im2col builds interior rows with fixed 16-, 32- or 64-byte moves
  // (kernels/im2col.h): kernel rows of 6 to 65 bytes around each move width (16, 17, 32, 33,
  // 48, 55, 63, 64, 65; YOLO's 3x3 layers on 16 channels are 48),
  // 3x3 and 7x7 RGB stems, strides 1 and 2, one or two images, inline and on 2 threads,
  // images of several tiles. Without padding on the bottom and right the last pixel's moves
  // would read past the input, which ends at a guard page: those pixels take exact copies.
  struct Few {
    int C, kh, kw, stride, pad, hw;
  };
  for (const Few f : {Few{3, 3, 3, 2, 1, 51}, Few{3, 3, 3, 2, 0, 51}, Few{3, 3, 3, 1, 0, 30}, Few{3, 7, 7, 2, 3, 41},
                      Few{3, 7, 7, 2, 0, 41}, Few{2, 1, 3, 1, 0, 20}, Few{4, 2, 4, 1, 0, 19}, Few{17, 2, 1, 1, 0, 12},
                      Few{8, 3, 4, 2, 0, 21}, Few{11, 3, 3, 1, 0, 12}, Few{5, 3, 3, 2, 1, 33}, Few{16, 3, 3, 1, 1, 20},
                      Few{16, 3, 3, 2, 0, 21}, Few{11, 5, 5, 1, 0, 14}, Few{21, 3, 3, 1, 0, 13}, Few{16, 2, 4, 1, 0, 12},
                      Few{13, 3, 5, 2, 1, 17}}) {
    for (int threads = 0; threads < 2; ++threads) {
      ConvShape s;
      s.batch = rng.uniform(1, 2);
      s.H = f.hw;
      s.W = f.hw + rng.uniform(0, 3);
      s.C = f.C;
      s.out_channels = rng.uniform(1, 40);
      s.kernel_h = f.kh;
      s.kernel_w = f.kw;
      s.stride_h = s.stride_w = f.stride;
      s.pad_top = s.pad_left = f.pad;
      s.pad_bottom = s.pad_right = f.pad == 0 ? 0 : rng.uniform(0, f.pad);
      run_conv(rng, s, threads == 1);
    }
  }
  // Regular convolutions by kernel rows (kernels/conv_rows.h): channel counts whose kernel rows
  // are whole k-groups (and some that are not, which take im2col), kernels 1x1 to 7x7 with
  // padding on any side, strides 1 and 2, vertical dilation, maps up to 64 pixels wide, one
  // or two images, inline and on 3 threads, 7-bit weights. run_conv's draws (Int32 outputs,
  // weight zero points) send some to im2col, which the comparison covers alike.
  static const int kRowChannels[] = {4, 8, 12, 16, 20, 32, 48, 64, 2, 6, 3, 5};
  for (int i = 0; i < cases / 6 + 24; ++i) {
    ConvShape s;
    s.batch = rng.uniform(1, 2);
    s.C = kRowChannels[rng.uniform(0, 11)];
    s.out_channels = rng.uniform(1, 40);
    s.kernel_h = rng.uniform(1, 7);
    s.kernel_w = rng.uniform(1, 7);
    if (s.kernel_h * s.kernel_w * s.C > 1600) s.kernel_h = s.kernel_w = 3;
    s.stride_h = rng.uniform(1, 2);
    s.stride_w = rng.uniform(1, 2);
    s.dilation_h = rng.uniform(1, 2);
    s.pad_top = rng.uniform(0, s.kernel_h / 2);
    s.pad_bottom = rng.uniform(0, s.kernel_h / 2);
    s.pad_left = rng.uniform(0, s.kernel_w / 2);
    s.pad_right = rng.uniform(0, s.kernel_w / 2);
    // Wide enough that most have the 24 inside pixels per row conv_rows_wins() asks for.
    s.H = rng.uniform(3, 9);
    s.W = rng.uniform(8, 64);
    while (check_conv_shape(s) != nullptr) {
      ++s.H;
      ++s.W;
    }
    run_conv(rng, s, rng.uniform(0, 1) == 1, rng.uniform(0, 3) == 0);
  }
}

}  // namespace edge::test

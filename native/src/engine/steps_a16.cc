// The 16-bit activation family (W8A16: int8 weights, uint16 activations; `edge-model quantize
// --activation-bits 16`). A plan op whose activation tensors are u16 is built here instead of
// by its 8-bit family: quantize/dequantize at the graph's edges, conv, deconv and gemm (as a 1x1
// conv), add and mul, lut (65536 entries), max and average pooling, with the same fields as
// their 8-bit forms (the float-inside ones: steps_a16_float.cc).
//
// A convolution (or transposed convolution) on u16 activations runs the 8-bit kernels twice:
// x - zp = 256 * (hi - zp_hi) +
// (lo - zp_lo), where hi/lo are the high and low bytes of x and of its zero point, so the exact
// sum over x * w is 256 times the int32 sum over the high bytes plus the one over the low bytes.
// Both come from the packed int8 convolution with raw int32 output (every variant, every
// algorithm: pointwise, depthwise, im2col); padding reads each plane's zero-point byte and adds
// nothing. The combined sum (int64) plus the bias is requantized in double:
// y = clamp(round_half_even(acc * multiplier[c]) + zp_y). The element-wise steps compute what a
// DequantizeLinear -> float op -> QuantizeLinear chain computes in float32, as ONNX Runtime does.
#include "engine/a16.h"
#include "engine/step_builders.h"

#include <cmath>
#include <cstring>
#include <type_traits>

namespace edge::engine {
namespace k = edge::kernels;
using a16::clamp16;
using a16::kU16Max;
using a16::quantize16;
using a16::saturate16;
using a16::zero_point16;
using a16::round_even;

namespace {

constexpr size_t kChunk = 8192;  // values per task of the element-wise loops

template <class Fn>
void chunks(k::ThreadPool* pool, size_t count, Fn fn) {
  const int n = static_cast<int>((count + kChunk - 1) / kChunk);
  k::parallel_for(pool, n, [&](int t, int) {
    const size_t first = static_cast<size_t>(t) * kChunk;
    fn(first, std::min(kChunk, count - first));
  });
}

// float32 <-> u16, with the NCHW <-> NHWC move of the graph's edges when transpose is set.
class Convert16Step : public Step {
 public:
  bool quantize = true, transpose = false;
  int in = 0, out = 0, N = 0, C = 0, HW = 0;
  float scale = 1;
  int32_t zp = 0;
  size_t count = 0;
  k::Status run(const RunContext& ctx) const override {
    const size_t hw = static_cast<size_t>(HW), c = static_cast<size_t>(C);
    // Element i of the NHWC side is element map(i) of the NCHW side.
    auto nchw = [&](size_t i) {
      if (!transpose) return i;
      const size_t n = i / (hw * c), p = i / c % hw, ch = i % c;
      return (n * c + ch) * hw + p;
    };
    if (quantize) {
      const float* x = static_cast<const float*>(ctx.at(in));
      uint16_t* y = static_cast<uint16_t*>(ctx.at(out));
      chunks(ctx.pool, count, [&](size_t first, size_t n) {
        for (size_t i = first; i < first + n; ++i) y[i] = quantize16(x[nchw(i)], scale, zp);
      });
    } else {
      const uint16_t* x = static_cast<const uint16_t*>(ctx.at(in));
      float* y = static_cast<float*>(ctx.at(out));
      const float fz = static_cast<float>(zp);
      chunks(ctx.pool, count, [&](size_t first, size_t n) {
        for (size_t i = first; i < first + n; ++i) y[nchw(i)] = (static_cast<float>(x[i]) - fz) * scale;
      });
    }
    return k::Status::Ok();
  }
};

class Conv16Step : public Step {
 public:
  int in = 0, out = 0;
  std::unique_ptr<k::PackedConv> packed;
  std::unique_ptr<k::PackedDeconv> deconv;  // a ConvTranspose instead (packed is then null)
  std::vector<int32_t> bias;
  std::vector<double> multipliers;
  int32_t in_zp = 0, out_zp = 0, lo = 0, hi = kU16Max;
  size_t in_count = 0, out_pixels = 0, M = 0;
  int64_t macs = 0;
  int64_t work() const override { return 2 * macs; }
  size_t scratch_bytes(int threads) const override {
    return 2 * k::arena_bytes(in_count) + 2 * k::arena_bytes(out_pixels * M * sizeof(int32_t)) +
           (deconv ? k::deconv_scratch_bytes(*deconv, threads) : k::conv_scratch_bytes(*packed, threads));
  }
  size_t weight_bytes() const override { return (deconv ? deconv->bytes() : packed->bytes()) + bias.size() * 4 + multipliers.size() * 8; }
  k::Status run(const RunContext& ctx) const override {
    k::Arena& arena = *ctx.scratch;
    const size_t mark = arena.mark();
    auto* planes = static_cast<uint8_t*>(arena.alloc(2 * k::arena_bytes(in_count)));
    auto* acc = static_cast<int32_t*>(arena.alloc(2 * k::arena_bytes(out_pixels * M * sizeof(int32_t))));
    if (planes == nullptr || acc == nullptr) return k::Status::Error("scratch arena too small for the 16-bit convolution");
    uint8_t* const plane[2] = {planes, planes + k::arena_bytes(in_count)};
    int32_t* const sum[2] = {acc, acc + k::arena_bytes(out_pixels * M * sizeof(int32_t)) / sizeof(int32_t)};
    const uint16_t* x = static_cast<const uint16_t*>(ctx.at(in));
    chunks(ctx.pool, in_count, [&](size_t first, size_t n) {
      const uint16_t* __restrict src = x + first;
      uint8_t* __restrict hi_out = plane[0] + first;
      uint8_t* __restrict lo_out = plane[1] + first;
      for (size_t i = 0; i < n; ++i) {
        hi_out[i] = static_cast<uint8_t>(src[i] >> 8);
        lo_out[i] = static_cast<uint8_t>(src[i]);
      }
    });
    for (int p = 0; p < 2; ++p) {
      const int32_t zp = p == 0 ? in_zp >> 8 : in_zp & 255;
      k::ConvArgs a;
      a.x = plane[p];
      a.x_type = k::QType::U8;
      a.x_zero_point = zp;
      a.y = sum[p];
      a.out = k::OutputSpec::int32();
      const k::Status st = deconv ? k::conv_transpose(*deconv, plane[p], zp, nullptr, a.out, sum[p], arena, ctx.pool)
                                  : k::conv(*packed, a, arena, ctx.pool);
      if (!st.ok()) {
        arena.release_to(mark);
        return st;
      }
    }
    uint16_t* y = static_cast<uint16_t*>(ctx.at(out));
    const size_t pixels_per_task = std::max<size_t>(1, kChunk / M);
    const int tasks = static_cast<int>((out_pixels + pixels_per_task - 1) / pixels_per_task);
    k::parallel_for(ctx.pool, tasks, [&](int t, int) {
      const size_t p0 = static_cast<size_t>(t) * pixels_per_task, p1 = std::min(out_pixels, p0 + pixels_per_task);
      const double* __restrict mult = multipliers.data();
      const int32_t* __restrict b = bias.data();
      const double dlo = lo, dhi = hi, dzp = out_zp;
      for (size_t p = p0; p < p1; ++p) {
        const int32_t* __restrict high = sum[0] + p * M;
        const int32_t* __restrict low = sum[1] + p * M;
        uint16_t* __restrict dst = y + p * M;
        for (size_t c = 0; c < M; ++c) {
          // Each term is an int32, exact in double, and so is the sum (below 2^53).
          const double acc = 256.0 * high[c] + static_cast<double>(low[c]) + b[c];
          dst[c] = static_cast<uint16_t>(static_cast<int32_t>(round_even(std::min(dhi, std::max(dlo, acc * mult[c] + dzp)))));
        }
      }
    });
    arena.release_to(mark);
    return k::Status::Ok();
  }
};

// y = Q(DQ(a) + DQ(b)) (or *) in float32, as a DequantizeLinear/Add/QuantizeLinear chain
// computes it; b is read at i, at i modulo its channels (per channel, innermost), or at 0.
class Eltwise16Step : public Step {
 public:
  bool mul = false;
  int a = 0, b = 0, out = 0;
  float a_scale = 1, b_scale = 1, y_scale = 1;
  int32_t a_zp = 0, b_zp = 0, y_zp = 0, lo = 0, hi = kU16Max;
  size_t count = 0, b_count = 1;
  k::Status run(const RunContext& ctx) const override {
    const uint16_t* pa = static_cast<const uint16_t*>(ctx.at(a));
    const uint16_t* pb = static_cast<const uint16_t*>(ctx.at(b));
    uint16_t* y = static_cast<uint16_t*>(ctx.at(out));
    const float za = static_cast<float>(a_zp), zb = static_cast<float>(b_zp);
    const float flo = static_cast<float>(lo), fhi = static_cast<float>(hi);
    const float as = a_scale, bs = b_scale, ys = y_scale;
    const int32_t yz = y_zp;
    // Runs where b's index moves with a's (or stays, for a scalar): straight loops that vectorize.
    auto run = [&](auto mul_op, auto b_moves, const uint16_t* __restrict xa, const uint16_t* __restrict xb, uint16_t* __restrict out, size_t n) {
      for (size_t i = 0; i < n; ++i) {
        const float fa = (static_cast<float>(xa[i]) - za) * as;
        const float fb = (static_cast<float>(xb[decltype(b_moves)::value ? i : 0]) - zb) * bs;
        out[i] = quantize16(decltype(mul_op)::value ? fa * fb : fa + fb, ys, yz, flo, fhi);
      }
    };
    auto runs = [&](auto mul_op, size_t first, size_t n) {
      if (b_count == 1) return run(mul_op, std::false_type{}, pa + first, pb, y + first, n);
      for (size_t i = first; i < first + n;) {
        const size_t j = i % b_count, len = std::min(first + n - i, b_count - j);
        run(mul_op, std::true_type{}, pa + i, pb + j, y + i, len);
        i += len;
      }
    };
    chunks(ctx.pool, count, [&](size_t first, size_t n) {
      if (mul) runs(std::true_type{}, first, n);
      else runs(std::false_type{}, first, n);
    });
    return k::Status::Ok();
  }
};

// A function of one u16 value, tabulated (65536 entries, compile/lut.ts).
class Lut16Step : public Step {
 public:
  int in = 0, out = 0;
  size_t count = 0;
  std::vector<uint16_t> table;
  size_t weight_bytes() const override { return table.size() * sizeof(uint16_t); }
  k::Status run(const RunContext& ctx) const override {
    const uint16_t* x = static_cast<const uint16_t*>(ctx.at(in));
    uint16_t* y = static_cast<uint16_t*>(ctx.at(out));
    const uint16_t* t = table.data();
    chunks(ctx.pool, count, [&](size_t first, size_t n) {
      for (size_t i = first; i < first + n; ++i) y[i] = t[x[i]];
    });
    return k::Status::Ok();
  }
};

// Average pooling on NHWC u16 (global or windowed): exact int64 sums per window and channel,
// the mean requantized in double. A window counts its padding when count_include_pad is set.
// Max pooling (max = true) takes the largest value of the window's inside, at the input's scale.
class AvgPool16Step : public Step {
 public:
  int in = 0, out = 0;
  k::ConvShape s;  // the window as a depthwise convolution's
  bool max = false, include_pad = false;
  double ratio = 1;  // in_scale / out_scale
  int32_t in_zp = 0, out_zp = 0;
  k::Status run(const RunContext& ctx) const override {
    const uint16_t* x = static_cast<const uint16_t*>(ctx.at(in));
    uint16_t* y = static_cast<uint16_t*>(ctx.at(out));
    const int OH = s.out_h(), OW = s.out_w(), C = s.C;
    k::parallel_for(ctx.pool, s.batch * OH, [&](int t, int) {
      const int n = t / OH, oh = t % OH;
      const int h0 = oh * s.stride_h - s.pad_top, h1 = std::min(h0 + s.kernel_h, s.H), hs = std::max(h0, 0);
      for (int ow = 0; ow < OW; ++ow) {
        const int w0 = ow * s.stride_w - s.pad_left, w1 = std::min(w0 + s.kernel_w, s.W), ws = std::max(w0, 0);
        const int inside = (h1 - hs) * (w1 - ws);
        const int count = include_pad ? s.kernel_h * s.kernel_w : inside;
        uint16_t* dst = y + ((static_cast<size_t>(n) * OH + oh) * OW + ow) * C;
        if (max) {
          for (int c = 0; c < C; ++c) {
            uint16_t m = 0;
            for (int h = hs; h < h1; ++h)
              for (int w = ws; w < w1; ++w) m = std::max(m, x[((static_cast<size_t>(n) * s.H + h) * s.W + w) * C + c]);
            dst[c] = m;
          }
          continue;
        }
        for (int c = 0; c < C; ++c) {
          int64_t sum = 0;
          for (int h = hs; h < h1; ++h)
            for (int w = ws; w < w1; ++w) sum += x[((static_cast<size_t>(n) * s.H + h) * s.W + w) * C + c] - in_zp;
          dst[c] = saturate16(count > 0 ? static_cast<double>(sum) * ratio / count + out_zp : out_zp, 0, kU16Max);
        }
      }
    });
    return k::Status::Ok();
  }
};

}  // namespace

bool is_a16(const Fields& f, const char* tensor_key) {
  return f.desc(f.tensor(tensor_key)).dtype == DType::U16;
}

std::unique_ptr<Step> build_a16_convert(const Fields& f, bool quantize) {
  auto step = std::make_unique<Convert16Step>();
  step->quantize = quantize;
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {quantize ? DType::F32 : DType::U16});
  const TensorDesc& y = f.tensor_of(step->out, {quantize ? DType::U16 : DType::F32});
  step->transpose = f.flag(quantize ? "nchwToNhwc" : "nhwcToNchw");
  step->scale = f.scale("scale");
  step->zp = zero_point16(f, "zeroPoint");
  if (step->transpose) {
    f.tensor_of(step->in, {x.dtype}, 4);
    const auto& s = x.shape;
    // quantize: x is NCHW, y NHWC; dequantize: x is NHWC, y NCHW.
    const std::vector<int64_t> nhwc = quantize ? std::vector<int64_t>{s[0], s[2], s[3], s[1]} : s;
    expect_shape(f, y, quantize ? nhwc : std::vector<int64_t>{s[0], s[3], s[1], s[2]}, "output");
    step->N = static_cast<int>(nhwc[0]);
    step->HW = static_cast<int>(nhwc[1] * nhwc[2]);
    step->C = static_cast<int>(nhwc[3]);
  } else {
    f.check(element_count(x) == element_count(y), "input and output differ in element count");
  }
  step->count = static_cast<size_t>(element_count(x));
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

namespace {

// The bias, multipliers, zero points and clamp of a 16-bit conv or deconv; its reads and writes.
void read_requant(const Fields& f, Conv16Step& step) {
  const WeightDesc& b = f.weight("bias", DType::I32, step.M);
  const WeightDesc& m = f.weight("multipliers", DType::F32, step.M);
  step.bias.assign(b.as<int32_t>(), b.as<int32_t>() + step.M);
  for (size_t c = 0; c < step.M; ++c) {
    const float v = m.as<float>()[c];
    f.check(std::isfinite(v) && v > 0, "requantization multipliers must be positive and finite");
    step.multipliers.push_back(v);
  }
  step.in_zp = zero_point16(f, "inputZeroPoint");
  step.out_zp = zero_point16(f, "outputZeroPoint");
  std::tie(step.lo, step.hi) = clamp16(f);
  step.reads = {step.in};
  step.writes = step.out;
}

}  // namespace

std::unique_ptr<Step> build_conv16(const Fields& f, bool gemm) {
  auto step = std::make_unique<Conv16Step>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  k::ConvShape s;
  const TensorDesc& x = f.tensor_of(step->in, {DType::U16}, gemm ? 2 : 4);
  const TensorDesc& y = f.tensor_of(step->out, {DType::U16}, gemm ? 2 : 4);
  if (gemm) {
    // [rows, K] x weights [N, K]: a 1x1 convolution over rows pixels.
    s.H = static_cast<int>(x.shape[0]); s.W = 1; s.C = static_cast<int>(x.shape[1]);
    s.out_channels = static_cast<int>(y.shape[1]);
    expect_shape(f, y, {x.shape[0], y.shape[1]}, "output");
  } else {
    s = conv_shape(f, x, y);
  }
  f.check(!f.has("residual"), "a fused residual add takes 8-bit activations");
  const size_t M = static_cast<size_t>(s.out_channels);
  step->M = M;
  step->in_count = static_cast<size_t>(element_count(x));
  step->out_pixels = static_cast<size_t>(element_count(y)) / M;
  step->macs = static_cast<int64_t>(step->out_pixels) * s.out_channels * (s.C / s.groups) * s.kernel_h * s.kernel_w;
  const WeightDesc& w = f.weight("weights", DType::S8, M * (s.C / s.groups) * s.kernel_h * s.kernel_w);
  read_requant(f, *step);
  const k::Status st = k::pack_conv(s, w.as<int8_t>(), nullptr, 1, &step->packed);
  if (!st.ok()) f.fail(std::string("weights could not be packed: ") + st.error);
  return step;
}

std::unique_ptr<Step> build_deconv16(const Fields& f) {
  auto step = std::make_unique<Conv16Step>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U16}, 4);
  const TensorDesc& y = f.tensor_of(step->out, {DType::U16}, 4);
  f.check(step->in != step->out, "input and output must be different tensors");
  const k::DeconvShape s = deconv_shape(f, x, y);
  step->M = static_cast<size_t>(s.M);
  step->in_count = static_cast<size_t>(element_count(x));
  step->out_pixels = static_cast<size_t>(element_count(y)) / step->M;
  step->macs = static_cast<int64_t>(step->in_count) * (s.M / s.group) * s.KH * s.KW;
  const WeightDesc& w = f.weight("weights", DType::S8, static_cast<size_t>(s.C) * (s.M / s.group) * s.KH * s.KW);
  read_requant(f, *step);
  const k::Status st = k::PackedDeconv::pack(s, w.as<int8_t>(), &step->deconv);
  if (!st.ok()) f.fail(std::string("weights could not be packed: ") + st.error);
  return step;
}

std::unique_ptr<Step> build_eltwise16(const Fields& f, bool mul) {
  auto step = std::make_unique<Eltwise16Step>();
  step->mul = mul;
  step->a = f.tensor("a");
  step->b = f.tensor("b");
  step->out = f.tensor("output");
  const TensorDesc& a = f.tensor_of(step->a, {DType::U16});
  const TensorDesc& b = f.tensor_of(step->b, {DType::U16});
  const TensorDesc& y = f.tensor_of(step->out, {DType::U16});
  step->count = static_cast<size_t>(element_count(a));
  step->b_count = static_cast<size_t>(element_count(b));
  f.check(element_count(y) == element_count(a), "output must have as many elements as a");
  const int64_t channels = a.shape.empty() ? 1 : a.shape.back();
  f.check(static_cast<int64_t>(step->b_count) == element_count(a) || step->b_count == 1 || static_cast<int64_t>(step->b_count) == channels,
          "b must have as many elements as a, one, or a's innermost dimension");
  step->a_scale = f.scale("aScale");
  step->a_zp = zero_point16(f, "aZeroPoint");
  step->b_scale = f.scale("bScale");
  step->b_zp = zero_point16(f, "bZeroPoint");
  step->y_scale = f.scale("outputScale");
  step->y_zp = zero_point16(f, "outputZeroPoint");
  std::tie(step->lo, step->hi) = clamp16(f);
  step->reads = {step->a, step->b};
  step->writes = step->out;
  return step;
}

std::unique_ptr<Step> build_lut16(const Fields& f) {
  auto step = std::make_unique<Lut16Step>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U16});
  const TensorDesc& y = f.tensor_of(step->out, {DType::U16});
  f.check(element_count(x) == element_count(y), "input and output differ in element count");
  const WeightDesc& t = f.weight("table", DType::U16, 65536);
  step->table.assign(t.as<uint16_t>(), t.as<uint16_t>() + 65536);
  step->count = static_cast<size_t>(element_count(x));
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

std::unique_ptr<Step> build_pool16(const Fields& f, bool max) {
  auto step = std::make_unique<AvgPool16Step>();
  step->max = max;
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U16}, 4);
  const TensorDesc& y = f.tensor_of(step->out, {DType::U16}, 4);
  const std::vector<int> kernel = f.ints("kernel", 2, 1, 1 << 16), strides = f.ints("strides", 2, 1, 1 << 16);
  const std::vector<int> pads = f.ints("pads", 4, 0, 1 << 16);
  k::ConvShape& s = step->s;
  s.batch = static_cast<int>(x.shape[0]); s.H = static_cast<int>(x.shape[1]); s.W = static_cast<int>(x.shape[2]); s.C = static_cast<int>(x.shape[3]);
  s.out_channels = s.C;
  s.kernel_h = kernel[0]; s.kernel_w = kernel[1];
  s.stride_h = strides[0]; s.stride_w = strides[1];
  s.pad_top = pads[0]; s.pad_left = pads[1]; s.pad_bottom = pads[2]; s.pad_right = pads[3];
  f.check(s.pad_top < s.kernel_h && s.pad_bottom < s.kernel_h && s.pad_left < s.kernel_w && s.pad_right < s.kernel_w,
          "padding must be smaller than the window");
  f.check(s.out_h() >= 1 && s.out_w() >= 1, "the window does not fit the padded map");
  expect_shape(f, y, {s.batch, s.out_h(), s.out_w(), s.C}, "output");
  if (max) {
    const std::vector<int> dil = f.ints("dilations", 2, 1, 1);  // dilation 1 only
    (void)dil;
  } else {
    step->include_pad = f.flag("countIncludePad");
    step->in_zp = zero_point16(f, "inputZeroPoint");
    step->out_zp = zero_point16(f, "outputZeroPoint");
    step->ratio = static_cast<double>(f.scale("inputScale")) / f.scale("outputScale");
  }
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

}  // namespace edge::engine

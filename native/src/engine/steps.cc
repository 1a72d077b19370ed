// The plan's op kinds: each builder checks its fields against the tensors and weights it
// names (the plan comes from JavaScript and is never trusted), packs what it can once, and
// returns a step that only calls kernels at run time. Activations are u8 throughout: int8
// tensors were shifted by 128 by the compiler, which is exact.
#include "engine/steps.h"


#include <algorithm>
#include <cmath>
#include <cstring>

namespace edge::engine {
namespace k = edge::kernels;

int64_t element_count(const TensorDesc& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  return n;
}

namespace {

// Reads and checks one op's fields; every failure names the op.
class Fields {
 public:
  Fields(const OpDesc& op, int index, const BuildContext& ctx)
      : op_(op), ctx_(ctx), label_(op.op + " #" + std::to_string(index)) {}

  [[noreturn]] void fail(const std::string& why) const { throw PlanError(label_ + ": " + why); }
  const std::string& label() const { return label_; }

  double number(const char* key) const {
    auto it = op_.num.find(key);
    if (it == op_.num.end()) fail(std::string("missing number field '") + key + "'");
    if (!std::isfinite(it->second)) fail(std::string("field '") + key + "' is not a finite number");
    return it->second;
  }
  int integer(const char* key, int64_t lo, int64_t hi) const {
    const double v = number(key);
    if (v != std::floor(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi)) {
      fail(std::string("field '") + key + "' must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
    }
    return static_cast<int>(v);
  }
  bool flag(const char* key) const {
    auto it = op_.num.find(key);
    return it != op_.num.end() && it->second != 0;
  }
  float scale(const char* key) const {
    const double v = number(key);
    if (!(v > 0) || v > 1e30) fail(std::string("field '") + key + "' must be a positive scale");
    return static_cast<float>(v);
  }
  int zero_point(const char* key) const { return integer(key, 0, 255); }
  std::vector<int> ints(const char* key, size_t count, int64_t lo, int64_t hi) const {
    auto it = op_.list.find(key);
    if (it == op_.list.end()) fail(std::string("missing list field '") + key + "'");
    if (count && it->second.size() != count) fail(std::string("field '") + key + "' must hold " + std::to_string(count) + " values");
    std::vector<int> out;
    for (double v : it->second) {
      if (!std::isfinite(v) || v != std::floor(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi)) {
        fail(std::string("field '") + key + "' holds " + std::to_string(v) + ", expected integers in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      }
      out.push_back(static_cast<int>(v));
    }
    return out;
  }
  int tensor(const char* key) const { return integer(key, 0, static_cast<int64_t>(ctx_.tensors->size()) - 1); }
  const TensorDesc& desc(int t) const { return (*ctx_.tensors)[t]; }
  // A tensor with one of the allowed element types and, when given, this exact rank.
  const TensorDesc& tensor_of(int t, std::initializer_list<DType> types, size_t rank = 0) const {
    const TensorDesc& d = desc(t);
    if (std::find(types.begin(), types.end(), d.dtype) == types.end()) {
      fail("tensor " + std::to_string(t) + " has element type " + dtype_name(d.dtype) + ", which this op does not take");
    }
    if (rank && d.shape.size() != rank) fail("tensor " + std::to_string(t) + " must have rank " + std::to_string(rank));
    return d;
  }
  const WeightDesc& weight(const char* key, DType type, size_t count) const {
    const int w = integer(key, 0, static_cast<int64_t>(ctx_.weights->size()) - 1);
    const WeightDesc& d = (*ctx_.weights)[w];
    if (d.dtype != type) fail(std::string("weight '") + key + "' must be " + dtype_name(type) + ", got " + dtype_name(d.dtype));
    if (d.count() != count) fail(std::string("weight '") + key + "' must hold " + std::to_string(count) + " values, got " + std::to_string(d.count()));
    return d;
  }
  std::pair<int, int> clamp() const {
    const std::vector<int> c = ints("clamp", 2, 0, 255);
    if (c[0] > c[1]) fail("clamp minimum exceeds its maximum");
    return {c[0], c[1]};
  }
  void check(bool ok, const std::string& why) const {
    if (!ok) fail(why);
  }

 private:
  const OpDesc& op_;
  const BuildContext& ctx_;
  std::string label_;
};

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

void expect_shape(const Fields& f, const TensorDesc& t, const std::vector<int64_t>& want, const char* what) {
  if (t.shape != want) f.fail(std::string(what) + " shape must be " + shape_text(want) + ", got " + shape_text(t.shape));
}

// ---- quantize / dequantize (with the NCHW <-> NHWC move at the graph boundary) ----------

class QuantizeStep : public Step {
 public:
  int in = 0, out = 0, N = 0, C = 0, HW = 0;
  float scale = 1;
  int32_t zp = 0;
  bool transpose = false;
  size_t count = 0;
  k::Status run(const RunContext& ctx) const override {
    const float* x = static_cast<const float*>(ctx.at(in));
    uint8_t* y = static_cast<uint8_t*>(ctx.at(out));
    if (!transpose) {
      k::quantize_u8_strided(x, count, scale, zp, y, 1);
      return k::Status::Ok();
    }
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c) {
        k::quantize_u8_strided(x + (static_cast<size_t>(n) * C + c) * HW, static_cast<size_t>(HW), scale, zp,
                            y + static_cast<size_t>(n) * HW * C + c, static_cast<size_t>(C));
      }
    return k::Status::Ok();
  }
};

class DequantizeStep : public Step {
 public:
  int in = 0, out = 0, N = 0, C = 0, HW = 0;
  float scale = 1;
  int32_t zp = 0;
  bool transpose = false;
  size_t count = 0;
  k::Status run(const RunContext& ctx) const override {
    const uint8_t* x = static_cast<const uint8_t*>(ctx.at(in));
    float* y = static_cast<float*>(ctx.at(out));
    if (!transpose) return k::dequantize_linear(x, k::QType::U8, k::QuantLayout{1, 1, count}, &scale, &zp, 1, y);
    const float fz = static_cast<float>(zp);
    for (int n = 0; n < N; ++n)
      for (int p = 0; p < HW; ++p) {
        const uint8_t* src = x + (static_cast<size_t>(n) * HW + p) * C;
        float* dst = y + static_cast<size_t>(n) * C * HW + p;
        for (int c = 0; c < C; ++c) dst[static_cast<size_t>(c) * HW] = (static_cast<float>(src[c]) - fz) * scale;
      }
    return k::Status::Ok();
  }
};

std::unique_ptr<Step> build_quantize(const Fields& f, bool quantize) {
  const int in = f.tensor("input"), out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(in, {quantize ? DType::F32 : DType::U8});
  const TensorDesc& y = f.tensor_of(out, {quantize ? DType::U8 : DType::F32});
  bool transpose = f.flag(quantize ? "nchwToNhwc" : "nhwcToNchw");
  const float scale = f.scale("scale");
  const int zp = f.zero_point("zeroPoint");
  int N = 0, C = 0, HW = 0;
  if (transpose) {
    f.tensor_of(in, {x.dtype}, 4);
    const auto& s = x.shape;
    // quantize: x is NCHW, y NHWC; dequantize: x is NHWC, y NCHW.
    if (quantize) {
      expect_shape(f, y, {s[0], s[2], s[3], s[1]}, "output");
      N = static_cast<int>(s[0]); C = static_cast<int>(s[1]); HW = static_cast<int>(s[2] * s[3]);
    } else {
      expect_shape(f, y, {s[0], s[3], s[1], s[2]}, "output");
      N = static_cast<int>(s[0]); C = static_cast<int>(s[3]); HW = static_cast<int>(s[1] * s[2]);
    }
  } else {
    f.check(element_count(x) == element_count(y), "input and output differ in element count");
  }
  if (transpose && (C == 1 || HW == 1)) transpose = false;  // the same bytes in either order
  auto fill = [&](auto step) {
    step->in = in; step->out = out; step->N = N; step->C = C; step->HW = HW;
    step->scale = scale; step->zp = zp; step->transpose = transpose;
    step->count = static_cast<size_t>(element_count(x));
    step->reads = {in}; step->writes = out;
    return std::unique_ptr<Step>(std::move(step));
  };
  if (quantize) return fill(std::make_unique<QuantizeStep>());
  return fill(std::make_unique<DequantizeStep>());
}

// ---- convolution and GEMM with fused requantization + clamp -----------------------------

class ConvStep : public Step {
 public:
  int in = 0, out = 0;
  std::unique_ptr<k::PackedConv> packed;
  std::unique_ptr<k::DirectConv> direct;  // few input channels: see kernels/conv_direct.h
  std::vector<int32_t> bias;
  std::vector<float> multipliers;
  int32_t in_zp = 0;
  k::OutputSpec spec;
  k::Status run(const RunContext& ctx) const override {
    if (direct) {
      auto* acc = static_cast<float*>(ctx.scratch->alloc(direct->scratch_floats() * sizeof(float)));
      if (!acc) return k::Status::Error("scratch arena too small for the direct convolution");
      direct->run(static_cast<const uint8_t*>(ctx.at(in)), in_zp, spec.zero_point, spec.clamp_min, spec.clamp_max,
                  static_cast<uint8_t*>(ctx.at(out)), acc);
      return k::Status::Ok();
    }
    k::ConvArgs a;
    a.x = ctx.at(in);
    a.x_type = k::QType::U8;
    a.x_zero_point = in_zp;
    a.bias = bias.data();
    a.y = ctx.at(out);
    a.out = spec;
    return k::conv(*packed, a, *ctx.scratch, ctx.pool);
  }
  size_t scratch_bytes(int threads) const override {
    return direct ? k::arena_bytes(direct->scratch_floats() * sizeof(float)) : k::conv_scratch_bytes(*packed, threads);
  }
  size_t weight_bytes() const override {
    return (direct ? direct->bytes() : packed->bytes()) + bias.size() * 4 + multipliers.size() * 4;
  }
};

k::OutputSpec requant_spec(const Fields& f, const std::vector<float>& multipliers) {
  for (float m : multipliers) f.check(std::isfinite(m) && m > 0, "requantization multipliers must be positive and finite");
  k::OutputSpec spec = k::OutputSpec::quantized(k::QType::U8, multipliers.data(), static_cast<int>(multipliers.size()), f.zero_point("outputZeroPoint"));
  const auto [lo, hi] = f.clamp();
  spec.clamp_min = lo;
  spec.clamp_max = hi;
  return spec;
}

std::unique_ptr<Step> build_conv(const Fields& f) {
  auto step = std::make_unique<ConvStep>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U8}, 4);
  const TensorDesc& y = f.tensor_of(step->out, {DType::U8}, 4);
  const std::vector<int> kernel = f.ints("kernel", 2, 1, 64), strides = f.ints("strides", 2, 1, 64);
  const std::vector<int> pads = f.ints("pads", 4, 0, 64), dil = f.ints("dilations", 2, 1, 64);
  k::ConvShape s;
  s.batch = static_cast<int>(x.shape[0]); s.H = static_cast<int>(x.shape[1]); s.W = static_cast<int>(x.shape[2]); s.C = static_cast<int>(x.shape[3]);
  s.out_channels = static_cast<int>(y.shape[3]);
  s.kernel_h = kernel[0]; s.kernel_w = kernel[1];
  s.stride_h = strides[0]; s.stride_w = strides[1];
  s.pad_top = pads[0]; s.pad_left = pads[1]; s.pad_bottom = pads[2]; s.pad_right = pads[3];
  s.dilation_h = dil[0]; s.dilation_w = dil[1];
  s.groups = f.integer("group", 1, 1 << 16);
  f.check(s.C % s.groups == 0 && s.out_channels % s.groups == 0, "group must divide the input and output channels");
  if (const char* why = k::check_conv_shape(s)) f.fail(why);
  expect_shape(f, y, {s.batch, s.out_h(), s.out_w(), s.out_channels}, "output");
  const size_t M = static_cast<size_t>(s.out_channels);
  const WeightDesc& w = f.weight("weights", DType::S8, M * (s.C / s.groups) * s.kernel_h * s.kernel_w);
  const WeightDesc& b = f.weight("bias", DType::I32, M);
  const WeightDesc& m = f.weight("multipliers", DType::F32, M);
  step->bias.assign(b.as<int32_t>(), b.as<int32_t>() + M);
  step->multipliers.assign(m.as<float>(), m.as<float>() + M);
  step->in_zp = f.zero_point("inputZeroPoint");
  step->spec = requant_spec(f, step->multipliers);
  if (k::DirectConv::suits(s)) {
    step->direct = std::make_unique<k::DirectConv>(s, w.as<int8_t>(), step->bias.data(), step->multipliers.data(),
                                                   static_cast<int>(M));
  } else {
    const k::Status st = k::pack_conv(s, w.as<int8_t>(), nullptr, 1, &step->packed);
    if (!st.ok()) f.fail(std::string("weights could not be packed: ") + st.error);
  }
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

class GemmStep : public Step {
 public:
  int in = 0, out = 0, M = 0;
  std::unique_ptr<k::PackedWeights> packed;
  std::vector<int32_t> bias;
  std::vector<float> multipliers;
  int32_t in_zp = 0;
  k::OutputSpec spec;
  k::Status run(const RunContext& ctx) const override {
    k::GemmArgs a;
    a.M = M;
    a.a = ctx.at(in);
    a.a_type = k::QType::U8;
    a.a_zero_point = in_zp;
    a.bias = bias.data();
    a.c = ctx.at(out);
    a.out = spec;
    return k::gemm(*packed, a, *ctx.scratch, ctx.pool);
  }
  size_t scratch_bytes(int threads) const override { return k::gemm_scratch_bytes(*packed, M, threads); }
  size_t weight_bytes() const override { return packed->bytes() + bias.size() * 4 + multipliers.size() * 4; }
};

std::unique_ptr<Step> build_gemm(const Fields& f) {
  auto step = std::make_unique<GemmStep>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U8});
  const TensorDesc& y = f.tensor_of(step->out, {DType::U8});
  f.check(!x.shape.empty() && !y.shape.empty(), "input and output need at least one dimension");
  const int64_t K = x.shape.back(), N = y.shape.back();
  const int64_t M = element_count(x) / K;
  f.check(element_count(y) == M * N, "output must hold rows x outputs values (" + std::to_string(M) + " x " + std::to_string(N) + ")");
  const WeightDesc& w = f.weight("weights", DType::S8, static_cast<size_t>(N * K));
  const WeightDesc& b = f.weight("bias", DType::I32, static_cast<size_t>(N));
  const WeightDesc& m = f.weight("multipliers", DType::F32, static_cast<size_t>(N));
  step->M = static_cast<int>(M);
  step->bias.assign(b.as<int32_t>(), b.as<int32_t>() + N);
  step->multipliers.assign(m.as<float>(), m.as<float>() + N);
  step->in_zp = f.zero_point("inputZeroPoint");
  step->spec = requant_spec(f, step->multipliers);
  k::WeightsSource src;
  src.data = w.as<int8_t>();
  src.K = static_cast<int>(K);
  src.N = static_cast<int>(N);
  src.n_by_k = true;
  const k::Status st = k::pack_gemm_weights(src, &step->packed);
  if (!st.ok()) f.fail(std::string("weights could not be packed: ") + st.error);
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

// ---- pooling ----------------------------------------------------------------------------

k::PoolShape pool_shape(const Fields& f, const TensorDesc& x, const TensorDesc& y, bool dilated) {
  const std::vector<int> kernel = f.ints("kernel", 2, 1, 4096), strides = f.ints("strides", 2, 1, 4096);
  const std::vector<int> pads = f.ints("pads", 4, 0, 4096);
  k::PoolShape s;
  s.batch = static_cast<int>(x.shape[0]); s.H = static_cast<int>(x.shape[1]); s.W = static_cast<int>(x.shape[2]); s.C = static_cast<int>(x.shape[3]);
  s.kernel_h = kernel[0]; s.kernel_w = kernel[1];
  s.stride_h = strides[0]; s.stride_w = strides[1];
  s.pad_top = pads[0]; s.pad_left = pads[1]; s.pad_bottom = pads[2]; s.pad_right = pads[3];
  if (dilated) {
    const std::vector<int> dil = f.ints("dilations", 2, 1, 64);
    s.dilation_h = dil[0]; s.dilation_w = dil[1];
  }
  if (const char* why = k::check_pool_shape(s)) f.fail(why);
  expect_shape(f, y, {s.batch, s.out_h(), s.out_w(), s.C}, "output");
  return s;
}

class MaxPoolStep : public Step {
 public:
  int in = 0, out = 0;
  k::PoolShape shape;
  bool two_by_two = false;  // 2x2, stride 2, no padding: the classic CNN downsampling
  k::Status run(const RunContext& ctx) const override {
    if (two_by_two) {
      k::max_pool_2x2(shape, static_cast<const uint8_t*>(ctx.at(in)), static_cast<uint8_t*>(ctx.at(out)));
      return k::Status::Ok();
    }
    return k::max_pool(shape, ctx.at(in), k::QType::U8, ctx.at(out), ctx.pool);
  }
};

class AvgPoolStep : public Step {
 public:
  int in = 0, out = 0;
  k::PoolShape shape;
  bool global = false;
  float in_scale = 1, out_scale = 1;
  int32_t in_zp = 0, out_zp = 0;
  k::Status run(const RunContext& ctx) const override {
    if (global) {
      return k::global_avg_pool(shape.batch, shape.H, shape.W, shape.C, ctx.at(in), k::QType::U8, in_scale, in_zp, out_scale,
                                out_zp, ctx.at(out), *ctx.scratch, ctx.pool);
    }
    return k::avg_pool(shape, ctx.at(in), k::QType::U8, in_scale, in_zp, out_scale, out_zp, ctx.at(out), *ctx.scratch, ctx.pool);
  }
  size_t scratch_bytes(int threads) const override {
    return global ? k::global_avg_pool_scratch_bytes(shape.C, threads) : k::avg_pool_scratch_bytes(shape, threads);
  }
};

std::unique_ptr<Step> build_pool(const Fields& f, bool max) {
  const int in = f.tensor("input"), out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(in, {DType::U8}, 4);
  const TensorDesc& y = f.tensor_of(out, {DType::U8}, 4);
  if (max) {
    auto step = std::make_unique<MaxPoolStep>();
    step->in = in; step->out = out;
    step->shape = pool_shape(f, x, y, true);
    const k::PoolShape& p = step->shape;
    step->two_by_two = k::max_pool_2x2_suits(p);
    step->reads = {in}; step->writes = out;
    return step;
  }
  auto step = std::make_unique<AvgPoolStep>();
  step->in = in; step->out = out;
  step->shape = pool_shape(f, x, y, false);
  step->shape.count_include_pad = f.flag("countIncludePad");
  const k::PoolShape& s = step->shape;
  step->global = s.kernel_h == s.H && s.kernel_w == s.W && s.pad_top + s.pad_left + s.pad_bottom + s.pad_right == 0;
  step->in_scale = f.scale("inputScale");
  step->out_scale = f.scale("outputScale");
  step->in_zp = f.zero_point("inputZeroPoint");
  step->out_zp = f.zero_point("outputZeroPoint");
  step->reads = {in}; step->writes = out;
  return step;
}

// ---- elementwise: add, mul, lookup tables, transpose ------------------------------------

class EltwiseStep : public Step {
 public:
  bool mul = false;
  int a = 0, b = 0, out = 0;
  k::EltwiseArgs args;
  k::Status run(const RunContext& ctx) const override {
    k::EltwiseArgs x = args;
    x.a = ctx.at(a);
    x.b = ctx.at(b);
    x.y = ctx.at(out);
    return mul ? k::qmul(x, ctx.pool) : k::qadd(x, ctx.pool);
  }
};

std::unique_ptr<Step> build_eltwise(const Fields& f, bool mul) {
  auto step = std::make_unique<EltwiseStep>();
  step->mul = mul;
  step->a = f.tensor("a");
  step->b = f.tensor("b");
  step->out = f.tensor("output");
  const TensorDesc& a = f.tensor_of(step->a, {DType::U8});
  const TensorDesc& b = f.tensor_of(step->b, {DType::U8});
  const TensorDesc& y = f.tensor_of(step->out, {DType::U8});
  const int64_t n = element_count(a), nb = element_count(b);
  f.check(element_count(y) == n, "output must have as many elements as a");
  k::EltwiseArgs& x = step->args;
  x.type = k::QType::U8;
  const int64_t channels = a.shape.empty() ? 1 : a.shape.back();
  if (nb == n) x.broadcast = k::Broadcast::Full;
  else if (nb == 1) x.broadcast = k::Broadcast::Scalar;
  else if (nb == channels) x.broadcast = k::Broadcast::PerChannel;
  else f.fail("b must have as many elements as a, one, or a's innermost dimension");
  x.channels = static_cast<size_t>(channels);
  x.count = static_cast<size_t>(n);
  x.a_scale = f.scale("aScale");
  x.a_zero_point = f.zero_point("aZeroPoint");
  x.b_scale = f.scale("bScale");
  x.b_zero_point = f.zero_point("bZeroPoint");
  x.y_scale = f.scale("outputScale");
  x.y_zero_point = f.zero_point("outputZeroPoint");
  const auto [lo, hi] = f.clamp();
  x.clamp_min = lo;
  x.clamp_max = hi;
  step->reads = {step->a, step->b};
  step->writes = step->out;
  return step;
}

class LutStep : public Step {
 public:
  int in = 0, out = 0;
  size_t count = 0;
  k::Lut lut;
  k::Status run(const RunContext& ctx) const override {
    k::apply_lut(lut, ctx.at(in), ctx.at(out), count, ctx.pool);
    return k::Status::Ok();
  }
  size_t weight_bytes() const override { return sizeof(lut); }
};

std::unique_ptr<Step> build_lut(const Fields& f) {
  auto step = std::make_unique<LutStep>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U8, DType::S8});
  const TensorDesc& y = f.tensor_of(step->out, {DType::U8, DType::S8});
  f.check(element_count(x) == element_count(y), "input and output differ in element count");
  const WeightDesc& t = f.weight("table", DType::U8, 256);
  std::memcpy(step->lut.table, t.bytes.data(), 256);
  step->count = static_cast<size_t>(element_count(x));
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

// A byte permutation of up to 6 dimensions (layout changes; cheap next to the convolutions).
class TransposeStep : public Step {
 public:
  int in = 0, out = 0;
  std::vector<int64_t> out_shape, src_stride;  // src_stride[i]: input stride of output dim i
  k::Status run(const RunContext& ctx) const override {
    const uint8_t* x = static_cast<const uint8_t*>(ctx.at(in));
    uint8_t* y = static_cast<uint8_t*>(ctx.at(out));
    const size_t r = out_shape.size();
    int64_t idx[6] = {0, 0, 0, 0, 0, 0};
    const int64_t inner = out_shape[r - 1], inner_stride = src_stride[r - 1];
    int64_t total = 1;
    for (int64_t d : out_shape) total *= d;
    for (int64_t o = 0; o < total; o += inner) {
      int64_t base = 0;
      for (size_t i = 0; i + 1 < r; ++i) base += idx[i] * src_stride[i];
      for (int64_t j = 0; j < inner; ++j) y[o + j] = x[base + j * inner_stride];
      for (size_t i = r - 1; i-- > 0;) {
        if (++idx[i] < out_shape[i]) break;
        idx[i] = 0;
      }
    }
    return k::Status::Ok();
  }
};

std::unique_ptr<Step> build_transpose(const Fields& f) {
  auto step = std::make_unique<TransposeStep>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U8, DType::S8});
  const TensorDesc& y = f.tensor_of(step->out, {x.dtype});
  const size_t r = x.shape.size();
  f.check(r >= 1 && r <= 6, "transpose takes tensors of rank 1 to 6");
  const std::vector<int> perm = f.ints("perm", r, 0, static_cast<int64_t>(r) - 1);
  std::vector<bool> seen(r, false);
  for (int p : perm) {
    f.check(!seen[p], "perm must name every dimension once");
    seen[p] = true;
  }
  std::vector<int64_t> in_stride(r, 1), want(r);
  for (size_t i = r - 1; i-- > 0;) in_stride[i] = in_stride[i + 1] * x.shape[i + 1];
  for (size_t i = 0; i < r; ++i) {
    want[i] = x.shape[perm[i]];
    step->src_stride.push_back(in_stride[perm[i]]);
  }
  expect_shape(f, y, want, "output");
  step->out_shape = want;
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

}  // namespace

std::unique_ptr<Step> build_step(const OpDesc& op, int index, const BuildContext& ctx) {
  const Fields f(op, index, ctx);
  std::unique_ptr<Step> step;
  if (op.op == "quantize") step = build_quantize(f, true);
  else if (op.op == "dequantize") step = build_quantize(f, false);
  else if (op.op == "conv") step = build_conv(f);
  else if (op.op == "gemm") step = build_gemm(f);
  else if (op.op == "maxpool") step = build_pool(f, true);
  else if (op.op == "avgpool") step = build_pool(f, false);
  else if (op.op == "add") step = build_eltwise(f, false);
  else if (op.op == "mul") step = build_eltwise(f, true);
  else if (op.op == "lut") step = build_lut(f);
  else if (op.op == "transpose") step = build_transpose(f);
  else f.fail("unknown op kind (expected quantize, dequantize, conv, gemm, maxpool, avgpool, add, mul, lut or transpose)");
  step->name = f.label();
  return step;
}

}  // namespace edge::engine

// The float-inside family: ops where int8 is the wrong precision run in float inside the step,
// between a dequantize and a quantize (mixed precision, as XNNPACK and TFLite do): softmax,
// layer normalisation and resize (kernels/softmax.h, layernorm.h, resize.h). Inputs and
// outputs stay u8 in the arena; nothing float is ever stored there.
#include "engine/step_builders.h"

namespace edge::engine {
namespace k = edge::kernels;

namespace {

class SoftmaxStep : public Step {
 public:
  int in = 0, out = 0;
  k::SoftmaxTable table;
  k::SoftmaxArgs args;
  k::Status run(const RunContext& ctx) const override {
    k::SoftmaxArgs a = args;
    a.x = static_cast<const uint8_t*>(ctx.at(in));
    a.y = static_cast<uint8_t*>(ctx.at(out));
    return k::qsoftmax(table, a, ctx.pool);
  }
  size_t weight_bytes() const override { return sizeof(table); }
};

class LayerNormStep : public Step {
 public:
  int in = 0, out = 0;
  std::vector<float> gamma, beta;
  k::LayerNormArgs args;
  k::Status run(const RunContext& ctx) const override {
    k::LayerNormArgs a = args;
    a.x = static_cast<const uint8_t*>(ctx.at(in));
    a.y = static_cast<uint8_t*>(ctx.at(out));
    a.gamma = gamma.data();
    a.beta = beta.data();
    return k::qlayernorm(a, ctx.pool);
  }
  size_t weight_bytes() const override { return (gamma.size() + beta.size()) * 4; }
};

class ResizeStep : public Step {
 public:
  int in = 0, out = 0;
  std::vector<int32_t> y0, y1, x0, x1;
  std::vector<float> wy, wx;
  k::ResizeArgs args;
  k::Status run(const RunContext& ctx) const override {
    k::ResizeArgs a = args;
    a.x = static_cast<const uint8_t*>(ctx.at(in));
    a.y = static_cast<uint8_t*>(ctx.at(out));
    a.y0 = y0.data();
    a.x0 = x0.data();
    if (a.linear) {
      a.y1 = y1.data();
      a.x1 = x1.data();
      a.wy = wy.data();
      a.wx = wx.data();
    }
    return k::qresize(a, ctx.pool);
  }
  size_t weight_bytes() const override { return (y0.size() + y1.size() + x0.size() + x1.size() + wy.size() + wx.size()) * 4; }
};

std::vector<float> floats(const Fields& f, const char* key, size_t count) {
  const WeightDesc& w = f.weight(key, DType::F32, count);
  for (size_t i = 0; i < count; ++i) f.check(std::isfinite(w.as<float>()[i]), std::string("weight '") + key + "' holds a value that is not finite");
  return std::vector<float>(w.as<float>(), w.as<float>() + count);
}

}  // namespace

std::unique_ptr<Step> build_softmax(const Fields& f) {
  auto step = std::make_unique<SoftmaxStep>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U8});
  const TensorDesc& y = f.tensor_of(step->out, {DType::U8});
  f.check(step->in != step->out, "input and output must be different tensors");
  const int64_t n = element_count(x);
  f.check(element_count(y) == n, "input and output differ in element count");
  const int outer = f.integer("outer", 1, n), axis = f.integer("axis", 1, n), inner = f.integer("inner", 1, n);
  f.check(static_cast<int64_t>(outer) * axis * inner == n, "outer x axis x inner must equal the element count " + std::to_string(n));
  step->table = k::build_softmax_table(f.scale("inputScale"));
  step->args.outer = static_cast<size_t>(outer);
  step->args.axis = static_cast<size_t>(axis);
  step->args.inner = static_cast<size_t>(inner);
  step->args.y_scale = f.scale("outputScale");
  step->args.y_zero_point = f.zero_point("outputZeroPoint");
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

std::unique_ptr<Step> build_layernorm(const Fields& f) {
  auto step = std::make_unique<LayerNormStep>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U8});
  const TensorDesc& y = f.tensor_of(step->out, {DType::U8});
  f.check(!x.shape.empty() && x.shape.back() > 0, "input needs a non-empty innermost axis");
  f.check(y.shape == x.shape, "output must have the input's shape");
  const size_t len = static_cast<size_t>(x.shape.back());
  step->gamma = floats(f, "gamma", len);
  step->beta = floats(f, "beta", len);
  const double eps = f.number("epsilon");
  f.check(eps >= 0 && eps < 1e10, "epsilon must be a non-negative number");
  k::LayerNormArgs& a = step->args;
  a.rows = static_cast<size_t>(element_count(x)) / len;
  a.len = len;
  a.x_scale = f.scale("inputScale");
  a.x_zero_point = f.zero_point("inputZeroPoint");
  a.epsilon = static_cast<float>(eps);
  a.y_scale = f.scale("outputScale");
  a.y_zero_point = f.zero_point("outputZeroPoint");
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

std::unique_ptr<Step> build_resize(const Fields& f) {
  auto step = std::make_unique<ResizeStep>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U8}, 4);
  const TensorDesc& y = f.tensor_of(step->out, {DType::U8}, 4);
  f.check(step->in != step->out, "input and output must be different tensors");
  f.check(y.shape[0] == x.shape[0] && y.shape[3] == x.shape[3], "output must keep the batch and channels (NHWC)");
  k::ResizeArgs& a = step->args;
  a.batch = static_cast<int>(x.shape[0]);
  a.H = static_cast<int>(x.shape[1]);
  a.W = static_cast<int>(x.shape[2]);
  a.C = static_cast<int>(x.shape[3]);
  a.OH = static_cast<int>(y.shape[1]);
  a.OW = static_cast<int>(y.shape[2]);
  a.linear = f.flag("linear");
  const auto ints32 = [&](const char* key, size_t count, int hi) {
    const std::vector<int> v = f.ints(key, count, 0, hi - 1);
    return std::vector<int32_t>(v.begin(), v.end());
  };
  step->y0 = ints32("rowsFrom", static_cast<size_t>(a.OH), a.H);
  step->x0 = ints32("colsFrom", static_cast<size_t>(a.OW), a.W);
  if (a.linear) {
    step->y1 = ints32("rowsTo", static_cast<size_t>(a.OH), a.H);
    step->x1 = ints32("colsTo", static_cast<size_t>(a.OW), a.W);
    step->wy = floats(f, "rowWeights", static_cast<size_t>(a.OH));
    step->wx = floats(f, "colWeights", static_cast<size_t>(a.OW));
    for (float w : step->wy) f.check(w >= 0 && w <= 1, "row weights must lie in [0, 1]");
    for (float w : step->wx) f.check(w >= 0 && w <= 1, "column weights must lie in [0, 1]");
  }
  a.x_scale = f.scale("inputScale");
  a.x_zero_point = f.zero_point("inputZeroPoint");
  a.y_scale = f.scale("outputScale");
  a.y_zero_point = f.zero_point("outputZeroPoint");
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

}  // namespace edge::engine

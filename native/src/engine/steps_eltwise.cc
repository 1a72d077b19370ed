// The eltwise family: quantized add and mul with scalar, per-channel or full broadcast of b
// (kernels/eltwise.h).
#include "engine/step_builders.h"

namespace edge::engine {
namespace k = edge::kernels;

namespace {

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

}  // namespace

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

}  // namespace edge::engine

// The lut family: a 256-entry table applied to every byte (activations, requantization, the
// int8 sign flip; kernels/lut.h).
#include "engine/step_builders.h"

#include <cstring>

namespace edge::engine {
namespace k = edge::kernels;

namespace {

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

}  // namespace

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

}  // namespace edge::engine

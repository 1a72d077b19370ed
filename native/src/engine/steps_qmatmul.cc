// MatMul of two activations (attention): both operands u8 in the arena, exact int32 sums,
// requantized like a gemm (kernels/qmatmul.h).
#include "engine/step_builders.h"

namespace edge::engine {
namespace k = edge::kernels;

namespace {

class QMatMulStep : public Step {
 public:
  int a = 0, b = 0, out = 0, threads = 1;
  k::QMatMulArgs args;
  k::Status run(const RunContext& ctx) const override {
    k::QMatMulArgs x = args;
    x.a = static_cast<const uint8_t*>(ctx.at(a));
    x.b = static_cast<const uint8_t*>(ctx.at(b));
    x.y = static_cast<uint8_t*>(ctx.at(out));
    return k::qmatmul(x, *ctx.scratch, ctx.pool);
  }
  size_t scratch_bytes(int t) const override { return k::qmatmul_scratch_bytes(args.K, args.N, t); }
};

}  // namespace

std::unique_ptr<Step> build_qmatmul(const Fields& f) {
  auto step = std::make_unique<QMatMulStep>();
  step->a = f.tensor("a");
  step->b = f.tensor("b");
  step->out = f.tensor("output");
  const TensorDesc& ta = f.tensor_of(step->a, {DType::U8});
  const TensorDesc& tb = f.tensor_of(step->b, {DType::U8});
  const TensorDesc& ty = f.tensor_of(step->out, {DType::U8});
  f.check(step->out != step->a && step->out != step->b, "output must not alias an operand");
  k::QMatMulArgs& x = step->args;
  x.batch = f.integer("batch", 1, 1 << 20);
  x.M = f.integer("M", 1, 1 << 24);
  x.K = f.integer("K", 1, k::kQMatMulMaxK);
  x.N = f.integer("N", 1, 1 << 24);
  const bool a_bc = f.flag("aBroadcast"), b_bc = f.flag("bBroadcast");
  const int64_t mk = static_cast<int64_t>(x.M) * x.K, kn = static_cast<int64_t>(x.K) * x.N;
  f.check(element_count(ta) == (a_bc ? 1 : x.batch) * mk, "a must hold " + std::string(a_bc ? "" : "batch x ") + "M x K values");
  f.check(element_count(tb) == (b_bc ? 1 : x.batch) * kn, "b must hold " + std::string(b_bc ? "" : "batch x ") + "K x N values");
  f.check(element_count(ty) == static_cast<int64_t>(x.batch) * x.M * x.N, "output must hold batch x M x N values");
  x.a_batch_stride = a_bc ? 0 : static_cast<size_t>(mk);
  x.b_batch_stride = b_bc ? 0 : static_cast<size_t>(kn);
  x.a_zero_point = f.zero_point("aZeroPoint");
  x.b_zero_point = f.zero_point("bZeroPoint");
  const double m = f.number("multiplier");
  f.check(m > 0 && m < 1e30, "multiplier must be positive");
  x.multiplier = static_cast<float>(m);
  x.y_zero_point = f.zero_point("outputZeroPoint");
  const auto [lo, hi] = f.clamp();
  x.clamp_min = lo;
  x.clamp_max = hi;
  step->reads = {step->a, step->b};
  step->writes = step->out;
  return step;
}

}  // namespace edge::engine

// The gemm family: a fully connected layer with fused requantization and clamp (kernels/gemm.h).
#include "engine/step_builders.h"

namespace edge::engine {
namespace k = edge::kernels;

namespace {

class GemmStep : public Step {
 public:
  int in = 0, out = 0, M = 0;
  int64_t macs = 0;
  int64_t work() const override { return macs; }
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

}  // namespace

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
  step->macs = M * K * N;
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

}  // namespace edge::engine

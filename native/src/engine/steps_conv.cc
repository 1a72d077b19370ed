// The conv family: a convolution with fused requantization and clamp, on the packed GEMM-based
// kernel (kernels/conv.h) or, for few input channels, the direct one (kernels/conv_direct.h).
#include "engine/step_builders.h"

namespace edge::engine {
namespace k = edge::kernels;

namespace {

class ConvStep : public Step {
 public:
  int in = 0, out = 0;
  std::unique_ptr<k::PackedConv> packed;
  std::unique_ptr<k::DirectConv> direct;  // few input channels: see kernels/conv_direct.h
  std::vector<int32_t> bias;
  std::vector<float> multipliers;
  int32_t in_zp = 0;
  int64_t macs = 0;
  k::OutputSpec spec;
  // A fused residual add (compile/fuse.ts): residual >= 0, add's b and count filled per run.
  int residual = -1;
  k::EltwiseArgs add;
  // Multiply-accumulates the kernels perform: a GEMM computes whole column panels, so a layer
  // with one output channel (a detector's DFL conv, 8400 x 16 x 1) costs 64 columns' work on
  // AVX-512, and the pool has to see that to split it.
  int64_t padded_macs = 0;
  int64_t work() const override { return padded_macs; }
  k::Status run(const RunContext& ctx) const override {
    k::EltwiseArgs e = add;
    if (residual >= 0) {
      e.b = ctx.at(residual);
      e.a = e.y = ctx.at(out);
    }
    if (direct) {
      auto* acc = static_cast<float*>(ctx.scratch->alloc(direct->scratch_floats(k::pool_threads(ctx.pool)) * sizeof(float)));
      if (!acc) return k::Status::Error("scratch arena too small for the direct convolution");
      direct->run(static_cast<const uint8_t*>(ctx.at(in)), in_zp, spec.zero_point, spec.clamp_min, spec.clamp_max,
                  static_cast<uint8_t*>(ctx.at(out)), acc, ctx.pool);
      return residual >= 0 ? k::qadd(e, ctx.pool) : k::Status::Ok();
    }
    k::ConvArgs a;
    a.x = ctx.at(in);
    a.x_type = k::QType::U8;
    a.x_zero_point = in_zp;
    a.bias = bias.data();
    a.y = ctx.at(out);
    a.out = spec;
    if (residual >= 0) a.residual_add = &e;
    return k::conv(*packed, a, *ctx.scratch, ctx.pool);
  }
  size_t scratch_bytes(int threads) const override {
    return direct ? k::arena_bytes(direct->scratch_floats(threads) * sizeof(float)) : k::conv_scratch_bytes(*packed, threads);
  }
  size_t weight_bytes() const override {
    return (direct ? direct->bytes() : packed->bytes()) + bias.size() * 4 + multipliers.size() * 4;
  }
};

}  // namespace

std::unique_ptr<Step> build_conv(const Fields& f) {
  auto step = std::make_unique<ConvStep>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U8}, 4);
  const TensorDesc& y = f.tensor_of(step->out, {DType::U8}, 4);
  const k::ConvShape s = conv_shape(f, x, y);
  const size_t M = static_cast<size_t>(s.out_channels);
  step->macs = static_cast<int64_t>(s.batch) * s.out_h() * s.out_w() * s.out_channels * (s.C / s.groups) * s.kernel_h * s.kernel_w;
  const WeightDesc& w = f.weight("weights", DType::S8, M * (s.C / s.groups) * s.kernel_h * s.kernel_w);
  const WeightDesc& b = f.weight("bias", DType::I32, M);
  const WeightDesc& m = f.weight("multipliers", DType::F32, M);
  step->bias.assign(b.as<int32_t>(), b.as<int32_t>() + M);
  step->multipliers.assign(m.as<float>(), m.as<float>() + M);
  step->in_zp = f.zero_point("inputZeroPoint");
  step->spec = requant_spec(f, step->multipliers);
  if (k::DirectConv::wins(s)) {
    step->direct = std::make_unique<k::DirectConv>(s, w.as<int8_t>(), step->bias.data(), step->multipliers.data(),
                                                   static_cast<int>(M));
  } else {
    const k::Status st = k::pack_conv(s, w.as<int8_t>(), nullptr, 1, &step->packed);
    if (!st.ok()) f.fail(std::string("weights could not be packed: ") + st.error);
  }
  step->padded_macs = step->macs;
  if (step->packed && !step->packed->group_weights().empty()) {
    const int ocg = s.out_channels / s.groups, np = step->packed->group_weights()[0]->Np();
    if (ocg > 0 && np > ocg) step->padded_macs = step->macs / ocg * np;
  }
  step->reads = {step->in};
  if (f.has("residual")) {
    // The residual add fused by the compiler: the same arguments as build_eltwise's Full case.
    step->residual = f.tensor("residual");
    const TensorDesc& r = f.tensor_of(step->residual, {DType::U8}, 4);
    expect_shape(f, r, {s.batch, s.out_h(), s.out_w(), s.out_channels}, "residual");
    f.check(step->residual != step->out, "residual must not alias the output");
    k::EltwiseArgs& e = step->add;
    e.type = k::QType::U8;
    e.broadcast = k::Broadcast::Full;
    e.channels = M;
    e.count = static_cast<size_t>(element_count(y));
    e.a_scale = f.scale("convScale");
    e.a_zero_point = step->spec.zero_point;
    e.b_scale = f.scale("residualScale");
    e.b_zero_point = f.zero_point("residualZeroPoint");
    e.y_scale = f.scale("addScale");
    e.y_zero_point = f.zero_point("addZeroPoint");
    const std::vector<int> c = f.ints("addClamp", 2, 0, 255);
    f.check(c[0] <= c[1], "addClamp minimum exceeds its maximum");
    e.clamp_min = c[0];
    e.clamp_max = c[1];
    step->reads.push_back(step->residual);
  }
  step->writes = step->out;
  return step;
}

}  // namespace edge::engine

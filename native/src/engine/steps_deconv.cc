// The deconv family: ONNX ConvTranspose with int8 weights, exact int32 accumulation and the
// conv's per-channel requantization (kernels/deconv.h).
#include "engine/step_builders.h"

namespace edge::engine {
namespace k = edge::kernels;

namespace {

class DeconvStep : public Step {
 public:
  int in = 0, out = 0;
  std::unique_ptr<k::PackedDeconv> packed;
  std::vector<int32_t> bias;
  std::vector<float> multipliers;
  int32_t in_zp = 0;
  k::OutputSpec spec;
  k::Status run(const RunContext& ctx) const override {
    return k::conv_transpose(*packed, static_cast<const uint8_t*>(ctx.at(in)), in_zp, bias.data(), spec,
                             static_cast<uint8_t*>(ctx.at(out)), *ctx.scratch, ctx.pool);
  }
  size_t scratch_bytes(int threads) const override { return k::deconv_scratch_bytes(*packed, threads); }
  size_t weight_bytes() const override { return packed->bytes() + bias.size() * 4 + multipliers.size() * 4; }
};

}  // namespace

kernels::DeconvShape deconv_shape(const Fields& f, const TensorDesc& x, const TensorDesc& y) {
  k::DeconvShape s;
  s.batch = static_cast<int>(x.shape[0]);
  s.H = static_cast<int>(x.shape[1]);
  s.W = static_cast<int>(x.shape[2]);
  s.C = static_cast<int>(x.shape[3]);
  s.M = static_cast<int>(y.shape[3]);
  const std::vector<int> kernel = f.ints("kernel", 2, 1, 64), strides = f.ints("strides", 2, 1, 64);
  const std::vector<int> pads = f.ints("pads", 4, 0, 4096), dil = f.ints("dilations", 2, 1, 64), opad = f.ints("outputPadding", 2, 0, 63);
  s.KH = kernel[0]; s.KW = kernel[1];
  s.stride_h = strides[0]; s.stride_w = strides[1];
  s.pad_top = pads[0]; s.pad_left = pads[1]; s.pad_bottom = pads[2]; s.pad_right = pads[3];
  s.dil_h = dil[0]; s.dil_w = dil[1];
  s.out_pad_h = opad[0]; s.out_pad_w = opad[1];
  s.group = f.integer("group", 1, 1 << 16);
  if (const char* e = k::deconv_shape_error(s)) f.fail(e);
  expect_shape(f, y, {s.batch, s.out_h(), s.out_w(), s.M}, "output");
  return s;
}

std::unique_ptr<Step> build_deconv(const Fields& f) {
  auto step = std::make_unique<DeconvStep>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U8}, 4);
  const TensorDesc& y = f.tensor_of(step->out, {DType::U8}, 4);
  f.check(step->in != step->out, "input and output must be different tensors");
  const k::DeconvShape s = deconv_shape(f, x, y);
  const size_t wn = static_cast<size_t>(s.C) * (s.M / s.group) * s.KH * s.KW;
  const WeightDesc& w = f.weight("weights", DType::S8, wn);
  const WeightDesc& b = f.weight("bias", DType::I32, static_cast<size_t>(s.M));
  const WeightDesc& m = f.weight("multipliers", DType::F32, static_cast<size_t>(s.M));
  step->bias.assign(b.as<int32_t>(), b.as<int32_t>() + s.M);
  step->multipliers.assign(m.as<float>(), m.as<float>() + s.M);
  step->in_zp = f.zero_point("inputZeroPoint");
  step->spec = requant_spec(f, step->multipliers);
  const k::Status st = k::PackedDeconv::pack(s, w.as<int8_t>(), &step->packed);
  if (!st.ok()) f.fail(std::string("weights could not be packed: ") + st.error);
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

}  // namespace edge::engine

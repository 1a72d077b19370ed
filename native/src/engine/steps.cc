// The plan's op kinds: each builder checks its fields against the tensors and weights it
// names (the plan comes from JavaScript and is never trusted), packs what it can once, and
// returns a step that only calls kernels at run time. Activations are u8: int8 tensors were
// shifted by 128 by the compiler, which is exact; W8A16 plans have u16 ones (steps_a16.cc). The builders live one op family
// per file (steps_<family>.cc); this file maps op kinds to them.
#include "engine/steps.h"

#include "engine/step_builders.h"

namespace edge::engine {

int64_t element_count(const TensorDesc& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  return n;
}

namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

void expect_shape(const Fields& f, const TensorDesc& t, const std::vector<int64_t>& want, const char* what) {
  if (t.shape != want) f.fail(std::string(what) + " shape must be " + shape_text(want) + ", got " + shape_text(t.shape));
}

kernels::ConvShape conv_shape(const Fields& f, const TensorDesc& x, const TensorDesc& y) {
  namespace k = kernels;
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
  return s;
}

kernels::OutputSpec requant_spec(const Fields& f, const std::vector<float>& multipliers) {
  for (float m : multipliers) f.check(std::isfinite(m) && m > 0, "requantization multipliers must be positive and finite");
  kernels::OutputSpec spec = kernels::OutputSpec::quantized(kernels::QType::U8, multipliers.data(), static_cast<int>(multipliers.size()),
                                                            f.zero_point("outputZeroPoint"));
  const auto [lo, hi] = f.clamp();
  spec.clamp_min = lo;
  spec.clamp_max = hi;
  return spec;
}

std::unique_ptr<Step> build_step(const OpDesc& op, int index, const BuildContext& ctx) {
  const Fields f(op, index, ctx);
  std::unique_ptr<Step> step;
  if (op.op == "quantize") step = is_a16(f, "output") ? build_a16_convert(f, true) : build_quantize(f, true);
  else if (op.op == "dequantize") step = is_a16(f, "input") ? build_a16_convert(f, false) : build_quantize(f, false);
  else if (op.op == "conv") step = is_a16(f, "input") ? build_conv16(f, false) : build_conv(f);
  else if (op.op == "gemm") step = is_a16(f, "input") ? build_conv16(f, true) : build_gemm(f);
  else if (op.op == "maxpool") step = is_a16(f, "input") ? build_pool16(f, true) : build_pool(f, true);
  else if (op.op == "avgpool") step = is_a16(f, "input") ? build_pool16(f, false) : build_pool(f, false);
  else if (op.op == "add") step = is_a16(f, "a") ? build_eltwise16(f, false) : build_eltwise(f, false);
  else if (op.op == "mul") step = is_a16(f, "a") ? build_eltwise16(f, true) : build_eltwise(f, true);
  else if (op.op == "lut") step = is_a16(f, "input") ? build_lut16(f) : build_lut(f);
  else if (op.op == "transpose") step = build_transpose(f);
  else if (op.op == "softmax") step = is_a16(f, "input") ? build_softmax16(f) : build_softmax(f);
  else if (op.op == "layernorm") step = is_a16(f, "input") ? build_layernorm16(f) : build_layernorm(f);
  else if (op.op == "resize") step = is_a16(f, "input") ? build_resize16(f) : build_resize(f);
  else if (op.op == "qmatmul") step = is_a16(f, "a") ? build_qmatmul16(f) : build_qmatmul(f);
  else if (op.op == "deconv") step = is_a16(f, "input") ? build_deconv16(f) : build_deconv(f);
  else if (op.op == "copy") step = build_copy(f);
  else if (op.op == "max" || op.op == "min") step = build_maxmin(f, op.op == "max");
  else f.fail("unknown op kind (expected quantize, dequantize, conv, gemm, maxpool, avgpool, add, mul, lut, transpose, softmax, layernorm, resize, qmatmul, deconv, copy, max or min)");
  step->name = f.label();
  return step;
}

}  // namespace edge::engine

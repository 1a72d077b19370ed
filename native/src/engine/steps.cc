// The plan's op kinds: each builder checks its fields against the tensors and weights it
// names (the plan comes from JavaScript and is never trusted), packs what it can once, and
// returns a step that only calls kernels at run time. Activations are u8 throughout: int8
// tensors were shifted by 128 by the compiler, which is exact. The builders live one op family
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
  else if (op.op == "softmax") step = build_softmax(f);
  else if (op.op == "layernorm") step = build_layernorm(f);
  else if (op.op == "resize") step = build_resize(f);
  else if (op.op == "qmatmul") step = build_qmatmul(f);
  else if (op.op == "deconv") step = build_deconv(f);
  else if (op.op == "copy") step = build_copy(f);
  else if (op.op == "max" || op.op == "min") step = build_maxmin(f, op.op == "max");
  else f.fail("unknown op kind (expected quantize, dequantize, conv, gemm, maxpool, avgpool, add, mul, lut, transpose, softmax, layernorm, resize, qmatmul, deconv, copy, max or min)");
  step->name = f.label();
  return step;
}

}  // namespace edge::engine

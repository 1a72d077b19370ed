// The pool family: max and average pooling on NHWC maps (kernels/pool.h).
#include "engine/step_builders.h"

namespace edge::engine {
namespace k = edge::kernels;

namespace {

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

}  // namespace

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

}  // namespace edge::engine

// The layout family: transposes between NCHW and NHWC storage. There is no kernel for this; a
// byte permutation is cheap next to the convolutions and runs in the step itself.
#include "engine/step_builders.h"

namespace edge::engine {
namespace k = edge::kernels;

namespace {

// A byte permutation of up to 6 dimensions (layout changes; cheap next to the convolutions).
class TransposeStep : public Step {
 public:
  int in = 0, out = 0;
  std::vector<int64_t> out_shape, src_stride;  // src_stride[i]: input stride of output dim i
  k::Status run(const RunContext& ctx) const override {
    const uint8_t* x = static_cast<const uint8_t*>(ctx.at(in));
    uint8_t* y = static_cast<uint8_t*>(ctx.at(out));
    const int64_t inner = out_shape.back();
    int64_t total = 1;
    for (int64_t d : out_shape) total *= d;
    const int64_t rows = total / inner;
    // Runs of output rows of at least 16 KiB per task (a detector head's NHWC -> NCHW is ~50 us).
    const int64_t per_task = std::max<int64_t>(1, (int64_t{16} << 10) / inner);
    const int tasks = ctx.pool ? static_cast<int>(std::min<int64_t>((rows + per_task - 1) / per_task, 256)) : 1;
    if (tasks <= 1) {
      rows_between(x, y, 0, rows);
      return k::Status::Ok();
    }
    k::parallel_for(ctx.pool, tasks, [&](int t, int) { rows_between(x, y, rows * t / tasks, rows * (t + 1) / tasks); });
    return k::Status::Ok();
  }

 private:
  // Output rows (runs of the last dimension) [first, end).
  void rows_between(const uint8_t* x, uint8_t* y, int64_t first, int64_t end) const {
    const size_t r = out_shape.size();
    int64_t idx[6] = {0, 0, 0, 0, 0, 0};
    for (size_t i = r - 1, rest = static_cast<size_t>(first); i-- > 0;) {
      idx[i] = static_cast<int64_t>(rest % static_cast<size_t>(out_shape[i]));
      rest /= static_cast<size_t>(out_shape[i]);
    }
    const int64_t inner = out_shape[r - 1], inner_stride = src_stride[r - 1];
    for (int64_t row = first; row < end; ++row) {
      int64_t base = 0;
      for (size_t i = 0; i + 1 < r; ++i) base += idx[i] * src_stride[i];
      uint8_t* dst = y + row * inner;
      for (int64_t j = 0; j < inner; ++j) dst[j] = x[base + j * inner_stride];
      for (size_t i = r - 1; i-- > 0;) {
        if (++idx[i] < out_shape[i]) break;
        idx[i] = 0;
      }
    }
  }
};

}  // namespace

std::unique_ptr<Step> build_transpose(const Fields& f) {
  auto step = std::make_unique<TransposeStep>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U8, DType::S8});
  const TensorDesc& y = f.tensor_of(step->out, {x.dtype});
  const size_t r = x.shape.size();
  f.check(r >= 1 && r <= 6, "transpose takes tensors of rank 1 to 6");
  const std::vector<int> perm = f.ints("perm", r, 0, static_cast<int64_t>(r) - 1);
  std::vector<bool> seen(r, false);
  for (int p : perm) {
    f.check(!seen[p], "perm must name every dimension once");
    seen[p] = true;
  }
  std::vector<int64_t> in_stride(r, 1), want(r);
  for (size_t i = r - 1; i-- > 0;) in_stride[i] = in_stride[i + 1] * x.shape[i + 1];
  for (size_t i = 0; i < r; ++i) {
    want[i] = x.shape[perm[i]];
    step->src_stride.push_back(in_stride[perm[i]]);
  }
  expect_shape(f, y, want, "output");
  step->out_shape = want;
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

}  // namespace edge::engine

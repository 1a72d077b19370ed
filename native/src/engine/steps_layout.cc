// The layout family: transposes between NCHW and NHWC storage: planes whose last output
// dimension is strided and another walks the input contiguously go through k::transpose_u8
// (16x16 tiles); other permutations are a byte gather in the step itself.
#include "engine/step_builders.h"
#include "kernels/copy.h"

namespace edge::engine {
namespace k = edge::kernels;

namespace {

// A byte permutation of up to 6 dimensions (layout changes; cheap next to the convolutions).
class TransposeStep : public Step {
 public:
  int in = 0, out = 0;
  std::vector<int64_t> out_shape, src_stride;  // src_stride[i]: input stride of output dim i
  std::vector<int64_t> out_stride;              // row-major strides of the output
  int swap_dim = -1;  // an output dim other than the last with input stride 1, when the last's is not
  k::Status run(const RunContext& ctx) const override {
    const uint8_t* x = static_cast<const uint8_t*>(ctx.at(in));
    uint8_t* y = static_cast<uint8_t*>(ctx.at(out));
    const size_t r = out_shape.size();
    const int64_t inner = out_shape[r - 1];
    // Units of work: (swap_dim, last) planes, else output rows; runs of them of at least 16 KiB
    // per task on the pool (a detector head's NHWC -> NCHW is tens of microseconds).
    int64_t units = 1, unit_bytes = inner;
    for (size_t i = 0; i + 1 < r; ++i) {
      if (swap_dim >= 0 && i == static_cast<size_t>(swap_dim)) unit_bytes *= out_shape[i];
      else units *= out_shape[i];
    }
    const int64_t per_task = std::max<int64_t>(1, (int64_t{16} << 10) / unit_bytes);
    const int tasks = ctx.pool ? static_cast<int>(std::min<int64_t>((units + per_task - 1) / per_task, 256)) : 1;
    auto some = [&](int64_t first, int64_t end) {
      if (swap_dim >= 0) planes_between(x, y, first, end);
      else rows_between(x, y, first, end);
    };
    if (tasks <= 1) {
      some(0, units);
      return k::Status::Ok();
    }
    k::parallel_for(ctx.pool, tasks, [&](int t, int) { some(units * t / tasks, units * (t + 1) / tasks); });
    return k::Status::Ok();
  }

 private:
  // NHWC -> NCHW and the like: output dimension swap_dim walks the input contiguously, so each
  // (swap_dim, last) plane is a 2-D transpose (k::transpose_u8's 16x16 tiles). Planes [first, end)
  // in the order of the other dimensions, the last fastest.
  void planes_between(const uint8_t* x, uint8_t* y, int64_t first, int64_t end) const {
    const size_t r = out_shape.size(), p = static_cast<size_t>(swap_dim);
    const int64_t inner = out_shape[r - 1], inner_stride = src_stride[r - 1];
    int64_t idx[6] = {0, 0, 0, 0, 0, 0};
    for (size_t i = r - 1, rest = static_cast<size_t>(first); i-- > 0;) {
      if (i == p) continue;
      idx[i] = static_cast<int64_t>(rest % static_cast<size_t>(out_shape[i]));
      rest /= static_cast<size_t>(out_shape[i]);
    }
    for (int64_t q = first; q < end; ++q) {
      int64_t sbase = 0, obase = 0;
      for (size_t i = 0; i + 1 < r; ++i) sbase += idx[i] * src_stride[i], obase += idx[i] * out_stride[i];
      k::transpose_u8(x + sbase, static_cast<size_t>(inner), static_cast<size_t>(out_shape[p]),
                      static_cast<size_t>(inner_stride), y + obase, static_cast<size_t>(out_stride[p]));
      for (size_t i = r - 1; i-- > 0;) {
        if (i == p) continue;
        if (++idx[i] < out_shape[i]) break;
        idx[i] = 0;
      }
    }
  }
  // Any other permutation: output rows (runs of the last dimension) [first, end), gathered.
  void rows_between(const uint8_t* x, uint8_t* y, int64_t first, int64_t end) const {
    const size_t r = out_shape.size();
    const int64_t inner = out_shape[r - 1], inner_stride = src_stride[r - 1];
    int64_t idx[6] = {0, 0, 0, 0, 0, 0};
    for (size_t i = r - 1, rest = static_cast<size_t>(first); i-- > 0;) {
      idx[i] = static_cast<int64_t>(rest % static_cast<size_t>(out_shape[i]));
      rest /= static_cast<size_t>(out_shape[i]);
    }
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
  step->out_stride.assign(r, 1);
  for (size_t i = r - 1; i-- > 0;) step->out_stride[i] = step->out_stride[i + 1] * want[i + 1];
  if (r >= 2 && step->src_stride[r - 1] != 1 && want[r - 1] > 1)
    for (size_t i = 0; i + 1 < r; ++i)
      if (step->src_stride[i] == 1 && want[i] > 1) step->swap_dim = static_cast<int>(i);
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

}  // namespace edge::engine

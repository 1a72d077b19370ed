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
    int64_t idx[6] = {0, 0, 0, 0, 0, 0};
    const int64_t inner = out_shape[r - 1], inner_stride = src_stride[r - 1];
    int64_t total = 1;
    for (int64_t d : out_shape) total *= d;
    if (swap_dim >= 0) {
      // NHWC -> NCHW and the like: output dimension swap_dim walks the input contiguously, so
      // each (swap_dim, last) plane is a 2-D transpose (k::transpose_u8's 16x16 tiles).
      const size_t p = static_cast<size_t>(swap_dim);
      int64_t planes = 1;
      for (size_t i = 0; i + 1 < r; ++i)
        if (i != p) planes *= out_shape[i];
      for (int64_t q = 0; q < planes; ++q) {
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
      return k::Status::Ok();
    }
    for (int64_t o = 0; o < total; o += inner) {
      int64_t base = 0;
      for (size_t i = 0; i + 1 < r; ++i) base += idx[i] * src_stride[i];
      for (int64_t j = 0; j < inner; ++j) y[o + j] = x[base + j * inner_stride];
      for (size_t i = r - 1; i-- > 0;) {
        if (++idx[i] < out_shape[i]) break;
        idx[i] = 0;
      }
    }
    return k::Status::Ok();
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

// The float-inside ops on 16-bit activations (W8A16; the 8-bit forms are steps_float.cc and
// steps_qmatmul.cc): softmax, layer normalisation and resize in double between the dequantize
// and the quantize, and the MatMul of two activations with exact int64 sums. Same fields as the 8-bit
// ops, with u16 tensors and 16-bit zero points and clamp. Portable loops: these ops are a small
// share of a model (PP-OCRv4 rec's SVTR neck), and their result is within one output step of a
// float64 reference (test/engine-a16.test.ts).
#include "engine/a16.h"
#include "engine/step_builders.h"

#include <cmath>

namespace edge::engine {
namespace k = edge::kernels;
using a16::clamp16;
using a16::kU16Max;
using a16::saturate16;
using a16::zero_point16;

namespace {

// Softmax along the middle of [outer, axis, inner].
class Softmax16Step : public Step {
 public:
  int in = 0, out = 0;
  size_t outer = 1, axis = 1, inner = 1;
  double x_scale = 1, y_scale = 1;
  int32_t y_zp = 0;
  size_t scratch_bytes(int threads) const override { return static_cast<size_t>(threads) * k::arena_bytes(axis * sizeof(double)); }
  k::Status run(const RunContext& ctx) const override {
    const uint16_t* x = static_cast<const uint16_t*>(ctx.at(in));
    uint16_t* y = static_cast<uint16_t*>(ctx.at(out));
    auto* buf = static_cast<double*>(ctx.scratch->alloc(k::pool_threads(ctx.pool) * k::arena_bytes(axis * sizeof(double))));
    if (buf == nullptr) return k::Status::Error("scratch arena too small for the 16-bit softmax");
    const size_t stride = k::arena_bytes(axis * sizeof(double)) / sizeof(double);
    k::parallel_for(ctx.pool, static_cast<int>(outer * inner), [&](int t, int thread) {
      const size_t o = static_cast<size_t>(t) / inner, i = static_cast<size_t>(t) % inner;
      const uint16_t* src = x + o * axis * inner + i;
      uint16_t* dst = y + o * axis * inner + i;
      double* e = buf + static_cast<size_t>(thread) * stride;
      uint16_t top = 0;
      for (size_t a = 0; a < axis; ++a) top = std::max(top, src[a * inner]);
      double sum = 0;
      for (size_t a = 0; a < axis; ++a) sum += e[a] = std::exp((static_cast<double>(src[a * inner]) - top) * x_scale);
      for (size_t a = 0; a < axis; ++a) dst[a * inner] = saturate16(e[a] / sum / y_scale + y_zp, 0, kU16Max);
    });
    return k::Status::Ok();
  }
};

// Layer normalisation over the innermost axis, gamma and beta per element of it.
class LayerNorm16Step : public Step {
 public:
  int in = 0, out = 0;
  size_t rows = 0, len = 0;
  std::vector<double> gamma, beta;
  double x_scale = 1, y_scale = 1, epsilon = 0;
  int32_t x_zp = 0, y_zp = 0;
  size_t weight_bytes() const override { return (gamma.size() + beta.size()) * sizeof(double); }
  k::Status run(const RunContext& ctx) const override {
    const uint16_t* x = static_cast<const uint16_t*>(ctx.at(in));
    uint16_t* y = static_cast<uint16_t*>(ctx.at(out));
    k::parallel_for(ctx.pool, static_cast<int>(rows), [&](int r, int) {
      const uint16_t* src = x + static_cast<size_t>(r) * len;
      uint16_t* dst = y + static_cast<size_t>(r) * len;
      double mean = 0, var = 0;
      for (size_t i = 0; i < len; ++i) mean += (static_cast<double>(src[i]) - x_zp) * x_scale;
      mean /= static_cast<double>(len);
      for (size_t i = 0; i < len; ++i) {
        const double d = (static_cast<double>(src[i]) - x_zp) * x_scale - mean;
        var += d * d;
      }
      const double inv = 1 / std::sqrt(var / static_cast<double>(len) + epsilon);
      for (size_t i = 0; i < len; ++i) {
        const double v = ((static_cast<double>(src[i]) - x_zp) * x_scale - mean) * inv * gamma[i] + beta[i];
        dst[i] = saturate16(v / y_scale + y_zp, 0, kU16Max);
      }
    });
    return k::Status::Ok();
  }
};

// [batch, M, K] x [batch, K, N]: exact int64 sums of (a - zp_a) * (b - zp_b), requantized.
class QMatMul16Step : public Step {
 public:
  int a = 0, b = 0, out = 0;
  int batch = 1, M = 1, K = 1, N = 1;
  size_t a_stride = 0, b_stride = 0;
  int32_t a_zp = 0, b_zp = 0, y_zp = 0, lo = 0, hi = kU16Max;
  double multiplier = 1;
  int64_t work() const override { return static_cast<int64_t>(batch) * M * K * N; }
  k::Status run(const RunContext& ctx) const override {
    const uint16_t* pa = static_cast<const uint16_t*>(ctx.at(a));
    const uint16_t* pb = static_cast<const uint16_t*>(ctx.at(b));
    uint16_t* y = static_cast<uint16_t*>(ctx.at(out));
    k::parallel_for(ctx.pool, batch * M, [&](int t, int) {
      const int bi = t / M, m = t % M;
      const uint16_t* row = pa + bi * a_stride + static_cast<size_t>(m) * K;
      const uint16_t* mat = pb + bi * b_stride;
      uint16_t* dst = y + (static_cast<size_t>(bi) * M + m) * N;
      for (int n = 0; n < N; ++n) {
        int64_t s = 0;
        for (int kk = 0; kk < K; ++kk) s += static_cast<int64_t>(row[kk] - a_zp) * (mat[static_cast<size_t>(kk) * N + n] - b_zp);
        dst[n] = saturate16(static_cast<double>(s) * multiplier + y_zp, lo, hi);
      }
    });
    return k::Status::Ok();
  }
};

// Resize of an NHWC map over H and W: nearest (the source pixel) or bilinear, in double.
class Resize16Step : public Step {
 public:
  int in = 0, out = 0, N = 1, H = 0, W = 0, C = 0, OH = 0, OW = 0;
  bool linear = false;
  std::vector<int> y0, y1, x0, x1;
  std::vector<double> wy, wx;
  double x_scale = 1, y_scale = 1;
  int32_t x_zp = 0, y_zp = 0;
  k::Status run(const RunContext& ctx) const override {
    const uint16_t* x = static_cast<const uint16_t*>(ctx.at(in));
    uint16_t* y = static_cast<uint16_t*>(ctx.at(out));
    const double ratio = x_scale / y_scale;
    k::parallel_for(ctx.pool, N * OH, [&](int t, int) {
      const int n = t / OH, oh = t % OH;
      const uint16_t* img = x + static_cast<size_t>(n) * H * W * C;
      auto at = [&](int h, int w, int c) { return static_cast<double>(img[(static_cast<size_t>(h) * W + w) * C + c]) - x_zp; };
      uint16_t* dst = y + (static_cast<size_t>(n) * OH + oh) * OW * C;
      for (int ow = 0; ow < OW; ++ow)
        for (int c = 0; c < C; ++c) {
          double v = at(y0[oh], x0[ow], c);
          if (linear) {
            const double top = v * (1 - wx[ow]) + at(y0[oh], x1[ow], c) * wx[ow];
            const double bottom = at(y1[oh], x0[ow], c) * (1 - wx[ow]) + at(y1[oh], x1[ow], c) * wx[ow];
            v = top * (1 - wy[oh]) + bottom * wy[oh];
          }
          dst[static_cast<size_t>(ow) * C + c] = saturate16(v * ratio + y_zp, 0, kU16Max);
        }
    });
    return k::Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Step> build_resize16(const Fields& f) {
  auto step = std::make_unique<Resize16Step>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U16}, 4);
  const TensorDesc& y = f.tensor_of(step->out, {DType::U16}, 4);
  f.check(step->in != step->out, "input and output must be different tensors");
  f.check(y.shape[0] == x.shape[0] && y.shape[3] == x.shape[3], "output must keep the batch and channels (NHWC)");
  step->N = static_cast<int>(x.shape[0]); step->H = static_cast<int>(x.shape[1]); step->W = static_cast<int>(x.shape[2]);
  step->C = static_cast<int>(x.shape[3]); step->OH = static_cast<int>(y.shape[1]); step->OW = static_cast<int>(y.shape[2]);
  step->linear = f.flag("linear");
  step->y0 = f.ints("rowsFrom", static_cast<size_t>(step->OH), 0, step->H - 1);
  step->x0 = f.ints("colsFrom", static_cast<size_t>(step->OW), 0, step->W - 1);
  if (step->linear) {
    step->y1 = f.ints("rowsTo", static_cast<size_t>(step->OH), 0, step->H - 1);
    step->x1 = f.ints("colsTo", static_cast<size_t>(step->OW), 0, step->W - 1);
    for (const char* key : {"rowWeights", "colWeights"}) {
      const size_t n = static_cast<size_t>(key[0] == 'r' ? step->OH : step->OW);
      const WeightDesc& w = f.weight(key, DType::F32, n);
      std::vector<double>& v = key[0] == 'r' ? step->wy : step->wx;
      for (size_t i = 0; i < n; ++i) {
        const float wi = w.as<float>()[i];
        f.check(wi >= 0 && wi <= 1, std::string("weight '") + key + "' must lie in [0, 1]");
        v.push_back(wi);
      }
    }
  }
  step->x_scale = f.scale("inputScale");
  step->x_zp = zero_point16(f, "inputZeroPoint");
  step->y_scale = f.scale("outputScale");
  step->y_zp = zero_point16(f, "outputZeroPoint");
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

std::unique_ptr<Step> build_softmax16(const Fields& f) {
  auto step = std::make_unique<Softmax16Step>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U16});
  const TensorDesc& y = f.tensor_of(step->out, {DType::U16});
  f.check(step->in != step->out, "input and output must be different tensors");
  const int64_t n = element_count(x);
  f.check(element_count(y) == n, "input and output differ in element count");
  const int outer = f.integer("outer", 1, n), axis = f.integer("axis", 1, n), inner = f.integer("inner", 1, n);
  f.check(static_cast<int64_t>(outer) * axis * inner == n, "outer x axis x inner must equal the element count " + std::to_string(n));
  step->outer = static_cast<size_t>(outer);
  step->axis = static_cast<size_t>(axis);
  step->inner = static_cast<size_t>(inner);
  step->x_scale = f.scale("inputScale");
  step->y_scale = f.scale("outputScale");
  step->y_zp = zero_point16(f, "outputZeroPoint");
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

std::unique_ptr<Step> build_layernorm16(const Fields& f) {
  auto step = std::make_unique<LayerNorm16Step>();
  step->in = f.tensor("input");
  step->out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(step->in, {DType::U16});
  const TensorDesc& y = f.tensor_of(step->out, {DType::U16});
  f.check(!x.shape.empty() && x.shape.back() > 0, "input needs a non-empty innermost axis");
  f.check(y.shape == x.shape, "output must have the input's shape");
  step->len = static_cast<size_t>(x.shape.back());
  step->rows = static_cast<size_t>(element_count(x)) / step->len;
  for (const char* key : {"gamma", "beta"}) {
    const WeightDesc& w = f.weight(key, DType::F32, step->len);
    std::vector<double>& v = key[0] == 'g' ? step->gamma : step->beta;
    for (size_t i = 0; i < step->len; ++i) {
      f.check(std::isfinite(w.as<float>()[i]), std::string("weight '") + key + "' holds a value that is not finite");
      v.push_back(w.as<float>()[i]);
    }
  }
  step->epsilon = f.number("epsilon");
  f.check(step->epsilon >= 0 && step->epsilon < 1e10, "epsilon must be a non-negative number");
  step->x_scale = f.scale("inputScale");
  step->x_zp = zero_point16(f, "inputZeroPoint");
  step->y_scale = f.scale("outputScale");
  step->y_zp = zero_point16(f, "outputZeroPoint");
  step->reads = {step->in};
  step->writes = step->out;
  return step;
}

std::unique_ptr<Step> build_qmatmul16(const Fields& f) {
  auto step = std::make_unique<QMatMul16Step>();
  step->a = f.tensor("a");
  step->b = f.tensor("b");
  step->out = f.tensor("output");
  const TensorDesc& ta = f.tensor_of(step->a, {DType::U16});
  const TensorDesc& tb = f.tensor_of(step->b, {DType::U16});
  const TensorDesc& ty = f.tensor_of(step->out, {DType::U16});
  f.check(step->out != step->a && step->out != step->b, "output must not alias an operand");
  step->batch = f.integer("batch", 1, 1 << 20);
  step->M = f.integer("M", 1, 1 << 24);
  step->K = f.integer("K", 1, 1 << 20);  // |sum| <= K * 65535^2 < 2^63
  step->N = f.integer("N", 1, 1 << 24);
  const bool a_bc = f.flag("aBroadcast"), b_bc = f.flag("bBroadcast");
  const int64_t mk = static_cast<int64_t>(step->M) * step->K, kn = static_cast<int64_t>(step->K) * step->N;
  f.check(element_count(ta) == (a_bc ? 1 : step->batch) * mk, "a must hold " + std::string(a_bc ? "" : "batch x ") + "M x K values");
  f.check(element_count(tb) == (b_bc ? 1 : step->batch) * kn, "b must hold " + std::string(b_bc ? "" : "batch x ") + "K x N values");
  f.check(element_count(ty) == static_cast<int64_t>(step->batch) * step->M * step->N, "output must hold batch x M x N values");
  step->a_stride = a_bc ? 0 : static_cast<size_t>(mk);
  step->b_stride = b_bc ? 0 : static_cast<size_t>(kn);
  step->a_zp = zero_point16(f, "aZeroPoint");
  step->b_zp = zero_point16(f, "bZeroPoint");
  step->multiplier = f.number("multiplier");
  f.check(step->multiplier > 0 && step->multiplier < 1e30, "multiplier must be positive");
  step->y_zp = zero_point16(f, "outputZeroPoint");
  std::tie(step->lo, step->hi) = clamp16(f);
  step->reads = {step->a, step->b};
  step->writes = step->out;
  return step;
}

}  // namespace edge::engine

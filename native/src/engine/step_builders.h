#pragma once
// What the per-family step files (steps_<family>.cc) share: the checked reader of one op's
// fields, a few shape and requantization helpers, and one builder per op family. The families
// and their files are named like the kernel families they call (native/src/kernels/) and the
// compiler modules that emit them (agent/runtime/native/compile/).
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/steps.h"

namespace edge::engine {

// Reads and checks one op's fields; every failure names the op.
class Fields {
 public:
  Fields(const OpDesc& op, int index, const BuildContext& ctx)
      : op_(op), ctx_(ctx), label_(op.op + " #" + std::to_string(index)) {}

  [[noreturn]] void fail(const std::string& why) const { throw PlanError(label_ + ": " + why); }
  const std::string& label() const { return label_; }

  double number(const char* key) const {
    auto it = op_.num.find(key);
    if (it == op_.num.end()) fail(std::string("missing number field '") + key + "'");
    if (!std::isfinite(it->second)) fail(std::string("field '") + key + "' is not a finite number");
    return it->second;
  }
  int integer(const char* key, int64_t lo, int64_t hi) const {
    const double v = number(key);
    if (v != std::floor(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi)) {
      fail(std::string("field '") + key + "' must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
    }
    return static_cast<int>(v);
  }
  bool flag(const char* key) const {
    auto it = op_.num.find(key);
    return it != op_.num.end() && it->second != 0;
  }
  float scale(const char* key) const {
    const double v = number(key);
    if (!(v > 0) || v > 1e30) fail(std::string("field '") + key + "' must be a positive scale");
    return static_cast<float>(v);
  }
  int zero_point(const char* key) const { return integer(key, 0, 255); }
  std::vector<int> ints(const char* key, size_t count, int64_t lo, int64_t hi) const {
    auto it = op_.list.find(key);
    if (it == op_.list.end()) fail(std::string("missing list field '") + key + "'");
    if (count && it->second.size() != count) fail(std::string("field '") + key + "' must hold " + std::to_string(count) + " values");
    std::vector<int> out;
    for (double v : it->second) {
      if (!std::isfinite(v) || v != std::floor(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi)) {
        fail(std::string("field '") + key + "' holds " + std::to_string(v) + ", expected integers in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      }
      out.push_back(static_cast<int>(v));
    }
    return out;
  }
  // A list of finite numbers (scales); count 0 takes any length.
  std::vector<double> numbers(const char* key, size_t count) const {
    auto it = op_.list.find(key);
    if (it == op_.list.end()) fail(std::string("missing list field '") + key + "'");
    if (count && it->second.size() != count) fail(std::string("field '") + key + "' must hold " + std::to_string(count) + " values");
    for (double v : it->second) if (!std::isfinite(v)) fail(std::string("field '") + key + "' holds a number that is not finite");
    return it->second;
  }
  size_t tensor_count() const { return ctx_.tensors->size(); }
  bool has(const char* key) const { return op_.num.count(key) || op_.list.count(key); }
  int tensor(const char* key) const { return integer(key, 0, static_cast<int64_t>(ctx_.tensors->size()) - 1); }
  const TensorDesc& desc(int t) const { return (*ctx_.tensors)[t]; }
  // A tensor with one of the allowed element types and, when given, this exact rank.
  const TensorDesc& tensor_of(int t, std::initializer_list<DType> types, size_t rank = 0) const {
    const TensorDesc& d = desc(t);
    if (std::find(types.begin(), types.end(), d.dtype) == types.end()) {
      fail("tensor " + std::to_string(t) + " has element type " + dtype_name(d.dtype) + ", which this op does not take");
    }
    if (rank && d.shape.size() != rank) fail("tensor " + std::to_string(t) + " must have rank " + std::to_string(rank));
    return d;
  }
  const WeightDesc& weight(const char* key, DType type, size_t count) const {
    const int w = integer(key, 0, static_cast<int64_t>(ctx_.weights->size()) - 1);
    const WeightDesc& d = (*ctx_.weights)[w];
    if (d.dtype != type) fail(std::string("weight '") + key + "' must be " + dtype_name(type) + ", got " + dtype_name(d.dtype));
    if (d.count() != count) fail(std::string("weight '") + key + "' must hold " + std::to_string(count) + " values, got " + std::to_string(d.count()));
    return d;
  }
  std::pair<int, int> clamp() const {
    const std::vector<int> c = ints("clamp", 2, 0, 255);
    if (c[0] > c[1]) fail("clamp minimum exceeds its maximum");
    return {c[0], c[1]};
  }
  void check(bool ok, const std::string& why) const {
    if (!ok) fail(why);
  }

 private:
  const OpDesc& op_;
  const BuildContext& ctx_;
  std::string label_;
};

void expect_shape(const Fields& f, const TensorDesc& t, const std::vector<int64_t>& want, const char* what);

// The shape of a 2D convolution from NHWC x and y and the op's kernel, strides, pads, dilations
// and group fields, checked (the output's shape included).
kernels::ConvShape conv_shape(const Fields& f, const TensorDesc& x, const TensorDesc& y);

// The same for a transposed convolution (ConvTranspose: outputPadding too); steps_deconv.cc.
kernels::DeconvShape deconv_shape(const Fields& f, const TensorDesc& x, const TensorDesc& y);

// The u8 output spec of a conv or gemm: per-channel multipliers, zero point and fused clamp.
kernels::OutputSpec requant_spec(const Fields& f, const std::vector<float>& multipliers);

// One builder per op family; each checks its fields and throws PlanError.
std::unique_ptr<Step> build_quantize(const Fields& f, bool quantize);  // steps_quantize.cc (also dequantize)
std::unique_ptr<Step> build_conv(const Fields& f);                     // steps_conv.cc
std::unique_ptr<Step> build_gemm(const Fields& f);                     // steps_gemm.cc
std::unique_ptr<Step> build_pool(const Fields& f, bool max);           // steps_pool.cc
std::unique_ptr<Step> build_eltwise(const Fields& f, bool mul);        // steps_eltwise.cc
std::unique_ptr<Step> build_lut(const Fields& f);                      // steps_lut.cc
std::unique_ptr<Step> build_transpose(const Fields& f);                // steps_layout.cc
std::unique_ptr<Step> build_softmax(const Fields& f);                  // steps_float.cc
std::unique_ptr<Step> build_layernorm(const Fields& f);                // steps_float.cc
std::unique_ptr<Step> build_resize(const Fields& f);                   // steps_float.cc
std::unique_ptr<Step> build_qmatmul(const Fields& f);                  // steps_qmatmul.cc
std::unique_ptr<Step> build_deconv(const Fields& f);                   // steps_deconv.cc
std::unique_ptr<Step> build_copy(const Fields& f);                     // steps_copy.cc (Concat, Split, Slice, Transpose, Pad)
std::unique_ptr<Step> build_maxmin(const Fields& f, bool max);         // steps_copy.cc (Max, Min)
// steps_a16.cc: ops whose activations are u16 (W8A16); is_a16 says whether the tensor a field
// names is one.
bool is_a16(const Fields& f, const char* tensor_key);
std::unique_ptr<Step> build_a16_convert(const Fields& f, bool quantize);  // quantize / dequantize
std::unique_ptr<Step> build_conv16(const Fields& f, bool gemm);           // conv, gemm
std::unique_ptr<Step> build_eltwise16(const Fields& f, bool mul);        // add, mul
std::unique_ptr<Step> build_lut16(const Fields& f);
std::unique_ptr<Step> build_pool16(const Fields& f, bool max);           // maxpool, avgpool
std::unique_ptr<Step> build_deconv16(const Fields& f);
std::unique_ptr<Step> build_softmax16(const Fields& f);                   // steps_a16_float.cc
std::unique_ptr<Step> build_resize16(const Fields& f);
std::unique_ptr<Step> build_layernorm16(const Fields& f);
std::unique_ptr<Step> build_qmatmul16(const Fields& f);

}  // namespace edge::engine

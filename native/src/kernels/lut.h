#pragma once
// Activations on quantized values as 256-entry lookup tables: every possible input byte is
// dequantized, passed through the float function, and requantized once when the table is
// built (at load); applying it is one table lookup per byte. Works for any function, so
// ReLU, Clip, HardSigmoid, HardSwish, Sigmoid, Tanh, LeakyRelu all share one kernel.
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/thread_pool.h"

namespace edge::kernels {

// table[byte] = output byte for input byte `byte` (for int8 the byte is the two's
// complement bit pattern, i.e. index = uint8_t(x)).
struct Lut {
  uint8_t table[256];
};

enum class Activation : uint8_t { Relu, Clip, HardSigmoid, HardSwish, Sigmoid, Tanh, LeakyRelu, Identity };
// ONNX attribute meaning: Clip(p0 = min, p1 = max); HardSigmoid(p0 = alpha, p1 = beta,
// defaults 0.2 and 0.5); LeakyRelu(p0 = alpha, default 0.01). Others ignore p0/p1.
struct ActivationParams {
  Activation kind = Activation::Relu;
  float p0 = 0, p1 = 0;
};
float activation_value(const ActivationParams& a, float x);

// Builds table[i] = saturate(round_half_even(f(dequant(i)) / out_scale) + out_zp); f is any
// callable float(float). Computed in float32.
template <class F>
Lut build_lut(QType in_type, float in_scale, int32_t in_zp, QType out_type, float out_scale, int32_t out_zp, F f);
Lut build_activation_lut(const ActivationParams& a, QType in_type, float in_scale, int32_t in_zp, QType out_type,
                         float out_scale, int32_t out_zp);

// y[i] = table[x[i]] for n bytes on the calling thread (short rows: no task split); y may alias x.
void lut_row(const Lut& lut, const uint8_t* x, uint8_t* y, size_t n);

// y[i] = table[x[i]] for count bytes; y may alias x.
void apply_lut(const Lut& lut, const void* x, void* y, size_t count, ThreadPool* pool = nullptr);

// ---- implementation of the template --------------------------------------------------
uint8_t lut_quantize(float v, float scale, int32_t zp, QType t);

template <class F>
Lut build_lut(QType in_type, float in_scale, int32_t in_zp, QType out_type, float out_scale, int32_t out_zp, F f) {
  Lut lut;
  for (int i = 0; i < 256; ++i) {
    const int32_t q = in_type == QType::U8 ? i : static_cast<int8_t>(static_cast<uint8_t>(i));
    const float x = static_cast<float>(q - in_zp) * in_scale;
    lut.table[i] = lut_quantize(f(x), out_scale, out_zp, out_type);
  }
  return lut;
}

}  // namespace edge::kernels

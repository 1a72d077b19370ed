#include "kernels/lut.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace edge::kernels {

uint8_t lut_quantize(float v, float scale, int32_t zp, QType t) {
  if (std::isnan(v)) return static_cast<uint8_t>(zp);
  float r = std::nearbyint(v / scale) + static_cast<float>(zp);
  r = std::min(std::max(r, static_cast<float>(qmin(t))), static_cast<float>(qmax(t)));
  return static_cast<uint8_t>(static_cast<int32_t>(r));
}

float activation_value(const ActivationParams& a, float x) {
  switch (a.kind) {
    case Activation::Relu: return x > 0 ? x : 0.0f;
    case Activation::Clip: return std::min(std::max(x, a.p0), a.p1);
    case Activation::HardSigmoid: return std::max(0.0f, std::min(1.0f, a.p0 * x + a.p1));
    case Activation::HardSwish: return x * std::max(0.0f, std::min(1.0f, x / 6.0f + 0.5f));
    case Activation::Sigmoid: return 1.0f / (1.0f + std::exp(-x));
    case Activation::Tanh: return std::tanh(x);
    case Activation::LeakyRelu: return x >= 0 ? x : a.p0 * x;
    case Activation::Identity: return x;
  }
  return x;
}

Lut build_activation_lut(const ActivationParams& a, QType in_type, float in_scale, int32_t in_zp, QType out_type,
                         float out_scale, int32_t out_zp) {
  return build_lut(in_type, in_scale, in_zp, out_type, out_scale, out_zp, [&](float x) { return activation_value(a, x); });
}

void apply_lut(const Lut& lut, const void* x, void* y, size_t count, ThreadPool* pool) {
  const auto* in = static_cast<const uint8_t*>(x);
  auto* out = static_cast<uint8_t*>(y);
  constexpr size_t kChunk = 65536;
  const int chunks = static_cast<int>((count + kChunk - 1) / kChunk);
  auto task = [&](int c, int) {
    const size_t b = c * kChunk, e = std::min(count, b + kChunk);
    // Eight bytes per load and store: the per-byte loop is bound by its byte stores.
    const uint8_t* t = lut.table;
    size_t i = b;
    for (; i + 8 <= e; i += 8) {
      uint64_t v;
      std::memcpy(&v, in + i, 8);
      uint64_t r = 0;
      for (int k = 0; k < 8; ++k) r |= static_cast<uint64_t>(t[(v >> (8 * k)) & 0xFF]) << (8 * k);
      std::memcpy(out + i, &r, 8);
    }
    for (; i < e; ++i) out[i] = t[in[i]];
  };
  parallel_for(pool, chunks, task);
}

}  // namespace edge::kernels

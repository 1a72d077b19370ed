#pragma once
// What the 16-bit activation steps (W8A16: steps_a16.cc, steps_a16_float.cc) share: the u16
// range, their 16-bit zero point and clamp fields, and rounding to a u16 the way ONNX Runtime's
// QuantizeLinear does (half to even, saturated).
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/step_builders.h"

namespace edge::engine::a16 {

constexpr int32_t kU16Max = 65535;

inline int zero_point16(const Fields& f, const char* key) { return f.integer(key, 0, kU16Max); }

inline std::pair<int, int> clamp16(const Fields& f) {
  const std::vector<int> c = f.ints("clamp", 2, 0, kU16Max);
  f.check(c[0] <= c[1], "clamp minimum exceeds its maximum");
  return {c[0], c[1]};
}

// Round half to even in the default rounding mode, inline (std::nearbyint is a library call
// here): adding and subtracting 1.5 * 2^52 leaves the nearest integer for |v| < 2^51.
inline double round_even(double v) { return (v + 0x1.8p52) - 0x1.8p52; }

// round_half_even(v) clamped to [lo, hi] (integers, so clamping first gives the same result).
inline uint16_t saturate16(double v, int32_t lo, int32_t hi) {
  return static_cast<uint16_t>(round_even(v < lo ? lo : v > hi ? hi : v));
}

// ONNX QuantizeLinear in float32, saturated to [lo, hi] (within [0, 65535]):
// clamp(round_half_even(x / scale) + zero_point). Without branches, so loops vectorize: the
// quotient is first clamped to +-2^17 (beyond any u16 after the zero point; NaN goes to the
// low end), where adding and subtracting 1.5 * 2^23 rounds a float to the nearest integer,
// half to even.
inline uint16_t quantize16(float x, float scale, int32_t zp, float lo = 0, float hi = kU16Max) {
  float q = x / scale;
  q = q > -131072.0f ? q : -131072.0f;
  q = q < 131072.0f ? q : 131072.0f;
  const float r = ((q + 0x1.8p23f) - 0x1.8p23f) + static_cast<float>(zp);
  return static_cast<uint16_t>(static_cast<int32_t>(std::min(std::max(r, lo), hi)));
}

}  // namespace edge::engine::a16

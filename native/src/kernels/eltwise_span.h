#pragma once
// The element-wise kernels' loops (qadd, qmul; eltwise.h), written once and compiled per
// instruction set: eltwise.cc builds them for the baseline target (SSE2 on x86-64, NEON on
// aarch64) and eltwise_avx2.cc with AVX2, which the x86 variants' tables use. The loops have no
// index branch, so the compiler vectorizes them; every operation is an IEEE float32 operation
// on exact integer inputs (no contraction into FMA: the library builds with -ffp-contract=off)
// and rounding is half to even by adding and subtracting 1.5 * 2^23 (exact for the clamped
// |v| < 2^22, in the default rounding mode), so every build gives ref::qadd's bytes.
// Internal linkage: each file keeps its own copy, compiled with its own flags.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/eltwise.h"

namespace edge::kernels {
namespace {

struct EltwiseConsts {
  int32_t azp, bzp, yzp;
  float ra, rb, rm, flo, fhi;
};

#if defined(EDGE_ELTWISE_SIMD)
// A build's hand-vectorized body (eltwise_avx2.cc): the elements [0, returned) of the span, the
// same operations in the same order, so the same bytes; the loop below does the rest.
template <class T, bool kMul, bool kScalarB>
size_t eltwise_simd(const T* a, const T* b, T* y, size_t n, const EltwiseConsts& k);
#endif

template <class T, bool kMul, bool kScalarB>
void eltwise_span(const T* a, const T* b, T* y, size_t n, const EltwiseConsts& k) {
  constexpr float kMagic = 12582912.0f;
  size_t start = 0;
#if defined(EDGE_ELTWISE_SIMD)
  start = eltwise_simd<T, kMul, kScalarB>(a, b, y, n, k);
#endif
  for (size_t i = start; i < n; ++i) {
    const float da = static_cast<float>(static_cast<int32_t>(a[i]) - k.azp);
    const float db = static_cast<float>(static_cast<int32_t>(kScalarB ? b[0] : b[i]) - k.bzp);
    // da * db is an integer below 2^24 in magnitude: exact in float, as the int32 product is.
    float v = kMul ? k.rm * (da * db) : k.ra * da + k.rb * db;
    v = v < k.flo ? k.flo : v;
    v = v > k.fhi ? k.fhi : v;
    y[i] = static_cast<T>(static_cast<int32_t>((v + kMagic) - kMagic) + k.yzp);
  }
}

template <class T, bool kMul>
void eltwise_range_t(const EltwiseArgs& e, size_t begin, size_t end) {
  const T* a = static_cast<const T*>(e.a);
  const T* b = static_cast<const T*>(e.b);
  T* y = static_cast<T*>(e.y);
  const QType t = std::is_same<T, uint8_t>::value ? QType::U8 : QType::S8;
  const int32_t lo = std::max(e.clamp_min, qmin(t)), hi = std::min(e.clamp_max, qmax(t));
  const EltwiseConsts k{e.a_zero_point, e.b_zero_point, e.y_zero_point, e.a_scale / e.y_scale, e.b_scale / e.y_scale,
                        e.a_scale * e.b_scale / e.y_scale, static_cast<float>(lo - e.y_zero_point),
                        static_cast<float>(hi - e.y_zero_point)};
  switch (e.broadcast) {
    case Broadcast::Full: eltwise_span<T, kMul, false>(a + begin, b + begin, y + begin, end - begin, k); break;
    case Broadcast::Scalar: eltwise_span<T, kMul, true>(a + begin, b, y + begin, end - begin, k); break;
    case Broadcast::PerChannel: {
      // Spans run one channel row at a time, so few channels mean short spans: an SE block's
      // 16-channel gate measured 2.4x the time of a full-size operand. B is then repeated into
      // a block of whole rows (up to 1 KB) and spans run over up to that many elements.
      constexpr size_t kBlock = 1024;
      T rep[kBlock];
      size_t row = e.channels;
      const T* bb = b;
      if (e.channels < kBlock / 4 && end - begin > 2 * e.channels) {
        row = kBlock / e.channels * e.channels;
        for (size_t j = 0; j < row; j += e.channels) std::memcpy(rep + j, b, e.channels * sizeof(T));
        bb = rep;
      }
      for (size_t i = begin; i < end;) {
        const size_t c = i % e.channels, n = std::min(end - i, row - c);
        eltwise_span<T, kMul, false>(a + i, bb + c, y + i, n, k);
        i += n;
      }
      break;
    }
  }
}

// Elements [begin, end) of a checked qadd (mul false) or qmul (mul true).
inline void eltwise_range(const EltwiseArgs& e, size_t begin, size_t end, bool mul) {
  if (e.type == QType::U8) {
    if (mul) eltwise_range_t<uint8_t, true>(e, begin, end);
    else eltwise_range_t<uint8_t, false>(e, begin, end);
  } else {
    if (mul) eltwise_range_t<int8_t, true>(e, begin, end);
    else eltwise_range_t<int8_t, false>(e, begin, end);
  }
}

}  // namespace
}  // namespace edge::kernels

#include "kernels/eltwise.h"

#include <algorithm>
#include <cmath>

namespace edge::kernels {

namespace {
// Float32 rounding half to even of a value already clamped to a small range.
inline int32_t round_even(float v) { return static_cast<int32_t>(std::nearbyint(v)); }

template <class T, bool kMul>
void run(const EltwiseArgs& e, size_t begin, size_t end) {
  const T* a = static_cast<const T*>(e.a);
  const T* b = static_cast<const T*>(e.b);
  T* y = static_cast<T*>(e.y);
  const QType t = std::is_same<T, uint8_t>::value ? QType::U8 : QType::S8;
  const int32_t lo = std::max(e.clamp_min, qmin(t)), hi = std::min(e.clamp_max, qmax(t));
  const float flo = static_cast<float>(lo - e.y_zero_point), fhi = static_cast<float>(hi - e.y_zero_point);
  const float ra = e.a_scale / e.y_scale, rb = e.b_scale / e.y_scale;
  const float rm = e.a_scale * e.b_scale / e.y_scale;
  for (size_t i = begin; i < end; ++i) {
    const size_t j = e.broadcast == Broadcast::Full ? i : e.broadcast == Broadcast::Scalar ? 0 : i % e.channels;
    const int32_t da = static_cast<int32_t>(a[i]) - e.a_zero_point;
    const int32_t db = static_cast<int32_t>(b[j]) - e.b_zero_point;
    float v;
    if (kMul) {
      v = rm * static_cast<float>(da * db);
    } else {
      const float pa = ra * static_cast<float>(da);
      const float pb = rb * static_cast<float>(db);
      v = pa + pb;
    }
    v = v < flo ? flo : v;
    v = v > fhi ? fhi : v;
    y[i] = static_cast<T>(round_even(v) + e.y_zero_point);
  }
}

// The kernel path: the same float32 operations as run() above, in loops without an index
// branch so the compiler vectorizes them, and half-to-even rounding by adding and subtracting
// 1.5 * 2^23 (exact for the clamped |v| < 2^22, in the default rounding mode) instead of a
// library call per element. Bit-identical to run(), which stays the reference.
struct Consts {
  int32_t azp, bzp, yzp;
  float ra, rb, rm, flo, fhi;
};

template <class T, bool kMul, bool kScalarB>
void span(const T* a, const T* b, T* y, size_t n, const Consts& k) {
  constexpr float kMagic = 12582912.0f;
  for (size_t i = 0; i < n; ++i) {
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
void run_fast(const EltwiseArgs& e, size_t begin, size_t end) {
  const T* a = static_cast<const T*>(e.a);
  const T* b = static_cast<const T*>(e.b);
  T* y = static_cast<T*>(e.y);
  const QType t = std::is_same<T, uint8_t>::value ? QType::U8 : QType::S8;
  const int32_t lo = std::max(e.clamp_min, qmin(t)), hi = std::min(e.clamp_max, qmax(t));
  Consts k{e.a_zero_point, e.b_zero_point, e.y_zero_point, e.a_scale / e.y_scale, e.b_scale / e.y_scale,
           e.a_scale * e.b_scale / e.y_scale, static_cast<float>(lo - e.y_zero_point), static_cast<float>(hi - e.y_zero_point)};
  switch (e.broadcast) {
    case Broadcast::Full: span<T, kMul, false>(a + begin, b + begin, y + begin, end - begin, k); break;
    case Broadcast::Scalar: span<T, kMul, true>(a + begin, b, y + begin, end - begin, k); break;
    case Broadcast::PerChannel:
      for (size_t i = begin; i < end;) {
        const size_t c = i % e.channels, n = std::min(end - i, e.channels - c);
        span<T, kMul, false>(a + i, b + c, y + i, n, k);
        i += n;
      }
      break;
  }
}

const char* check(const EltwiseArgs& e) {
  if (e.count == 0) return nullptr;
  if (e.a == nullptr || e.b == nullptr || e.y == nullptr) return "eltwise: a, b and y must not be null";
  for (float s : {e.a_scale, e.b_scale, e.y_scale})
    if (!(s > 0) || !std::isfinite(s)) return "eltwise: scales must be finite and positive";
  for (int32_t z : {e.a_zero_point, e.b_zero_point, e.y_zero_point})
    if (z < qmin(e.type) || z > qmax(e.type)) return "eltwise: zero points must lie in the type's range";
  if (e.broadcast == Broadcast::PerChannel && (e.channels == 0 || e.count % e.channels != 0))
    return "eltwise: per-channel broadcast needs channels > 0 dividing count";
  if (std::max(e.clamp_min, qmin(e.type)) > std::min(e.clamp_max, qmax(e.type))) return "eltwise: clamp_min > clamp_max";
  return nullptr;
}

template <bool kMul>
Status dispatch(const EltwiseArgs& e, ThreadPool* pool) {
  if (const char* err = check(e)) return Status::Error(err);
  constexpr size_t kChunk = 16384;
  const int chunks = static_cast<int>((e.count + kChunk - 1) / kChunk);
  auto task = [&](int c, int) {
    const size_t b = c * kChunk, end = std::min(e.count, b + kChunk);
    if (e.type == QType::U8) run_fast<uint8_t, kMul>(e, b, end);
    else run_fast<int8_t, kMul>(e, b, end);
  };
  parallel_for(pool, chunks, task);
  return Status::Ok();
}
}  // namespace

Status qadd(const EltwiseArgs& args, ThreadPool* pool) { return dispatch<false>(args, pool); }
Status qmul(const EltwiseArgs& args, ThreadPool* pool) { return dispatch<true>(args, pool); }

namespace ref {
void qadd(const EltwiseArgs& e) {
  if (e.type == QType::U8) run<uint8_t, false>(e, 0, e.count);
  else run<int8_t, false>(e, 0, e.count);
}
void qmul(const EltwiseArgs& e) {
  if (e.type == QType::U8) run<uint8_t, true>(e, 0, e.count);
  else run<int8_t, true>(e, 0, e.count);
}
}  // namespace ref

}  // namespace edge::kernels

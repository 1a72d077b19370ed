#include "kernels/eltwise.h"

#include <algorithm>
#include <cmath>

#include "kernels/eltwise_span.h"
#include "kernels/variant_table.h"

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

const char* check(const EltwiseArgs& e) {
  if (e.count == 0) return nullptr;
  if (e.a == nullptr || e.b == nullptr || e.y == nullptr) return "eltwise: a, b and y must not be null";
  for (float s : {e.a_scale, e.b_scale, e.y_scale})
    if (!(s > 0) || !std::isfinite(s)) return "eltwise: scales must be finite and positive";
  // The kernels' ratios (eltwise_span.h) times 255 * 255 stay finite, so no sum is inf - inf.
  constexpr float kMaxRatio = 1e30f;
  if (!(e.a_scale / e.y_scale <= kMaxRatio && e.b_scale / e.y_scale <= kMaxRatio && e.a_scale * e.b_scale / e.y_scale <= kMaxRatio))
    return "eltwise: the scales' ratios (a_scale / y_scale, b_scale / y_scale, a_scale * b_scale / y_scale) must be at most 1e30";
  for (int32_t z : {e.a_zero_point, e.b_zero_point, e.y_zero_point})
    if (z < qmin(e.type) || z > qmax(e.type)) return "eltwise: zero points must lie in the type's range";
  if (e.broadcast == Broadcast::PerChannel && (e.channels == 0 || e.count % e.channels != 0))
    return "eltwise: per-channel broadcast needs channels > 0 dividing count";
  if (std::max(e.clamp_min, qmin(e.type)) > std::min(e.clamp_max, qmax(e.type))) return "eltwise: clamp_min > clamp_max";
  return nullptr;
}

// The variant's build of the loops (AVX2 on x86), else this file's (baseline: SSE2, NEON).
auto active_range() -> decltype(VariantKernels::eltwise) {
  return active_kernels().eltwise != nullptr ? active_kernels().eltwise : eltwise_baseline;
}

template <bool kMul>
Status dispatch(const EltwiseArgs& e, ThreadPool* pool) {
  if (const char* err = check(e)) return Status::Error(err);
  constexpr size_t kChunk = 16384;
  const int chunks = static_cast<int>((e.count + kChunk - 1) / kChunk);
  auto* range = active_range();
  auto task = [&](int c, int) {
    const size_t b = c * kChunk, end = std::min(e.count, b + kChunk);
    range(e, b, end, kMul);
  };
  parallel_for(pool, chunks, task);
  return Status::Ok();
}
}  // namespace

void eltwise_baseline(const EltwiseArgs& e, size_t begin, size_t end, bool mul) { eltwise_range(e, begin, end, mul); }

Status qadd(const EltwiseArgs& args, ThreadPool* pool) { return dispatch<false>(args, pool); }

Status qadd_rows(const EltwiseArgs& args, size_t rows, size_t stride) {
  if (args.broadcast != Broadcast::Full) return Status::Error("qadd_rows: the second operand must have the output's shape");
  if (rows > 1 && stride < args.count) return Status::Error("qadd_rows: rows must not overlap (stride >= count)");
  if (const char* err = check(args)) return Status::Error(err);
  auto* range = active_range();
  EltwiseArgs row = args;
  for (size_t i = 0; i < rows; ++i) {
    // One byte per element (uint8 and int8 alike).
    row.a = static_cast<const uint8_t*>(args.a) + i * stride;
    row.b = static_cast<const uint8_t*>(args.b) + i * stride;
    row.y = static_cast<uint8_t*>(args.y) + i * stride;
    range(row, 0, args.count, false);
  }
  return Status::Ok();
}
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

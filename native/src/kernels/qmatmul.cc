#include "kernels/qmatmul.h"

#include <algorithm>

#include "kernels/dispatch.h"
#include "kernels/variant_table.h"

namespace edge::kernels {

namespace {
int padded_k(int K) { return (K + 1) & ~1; }
int padded_n(int N) { return (N + 7) & ~7; }
}  // namespace

void qdot_row_scalar(const int16_t* a, const int16_t* bp, int Kp, int Np, int32_t* acc) {
  for (int n = 0; n < Np; ++n) acc[n] = 0;
  for (int p = 0; p < Kp / 2; ++p) {
    const int32_t a0 = a[2 * p], a1 = a[2 * p + 1];
    const int16_t* b = bp + static_cast<size_t>(p) * Np * 2;
    for (int n = 0; n < Np; ++n) acc[n] += a0 * b[2 * n] + a1 * b[2 * n + 1];
  }
}

QDotRowFn active_qdot_row() {
  switch (active_variant()) {
    case Variant::Avx2: case Variant::Avx512Vnni: case Variant::AvxVnni:
#if defined(__x86_64__) || defined(_M_X64)
      return qdot_row_avx2;
#else
      return qdot_row_scalar;
#endif
    case Variant::Neon: case Variant::Dotprod:
#if defined(__aarch64__)
      return qdot_row_neon;
#else
      return qdot_row_scalar;
#endif
    default: return qdot_row_scalar;
  }
}

size_t qmatmul_scratch_bytes(int K, int N, int threads) {
  const size_t kp = static_cast<size_t>(padded_k(K)), np = static_cast<size_t>(padded_n(N));
  const size_t t = static_cast<size_t>(std::max(threads, 1));
  return arena_bytes(kp * np * 2) + arena_bytes(t * kp * 2) + arena_bytes(t * np * 4);
}

Status qmatmul(const QMatMulArgs& x, Arena& arena, ThreadPool* pool) {
  if (x.batch < 1 || x.M < 1 || x.K < 1 || x.N < 1) return Status::Error("qmatmul: batch, M, K and N must be positive");
  if (x.K > kQMatMulMaxK) return Status::Error("qmatmul: K exceeds 33025, where the int32 sum could overflow");
  if (!x.a || !x.b || !x.y) return Status::Error("qmatmul: null operand");
  if (x.a_zero_point < 0 || x.a_zero_point > 255 || x.b_zero_point < 0 || x.b_zero_point > 255 || x.y_zero_point < 0 ||
      x.y_zero_point > 255 || x.clamp_min < 0 || x.clamp_max > 255 || x.clamp_min > x.clamp_max) {
    return Status::Error("qmatmul: zero points and clamp must lie in [0, 255]");
  }
  const int K = x.K, N = x.N, Kp = padded_k(K), Np = padded_n(N);
  const int threads = pool_threads(pool);
  const size_t mark = arena.mark();
  auto* bt = static_cast<int16_t*>(arena.alloc(static_cast<size_t>(Kp) * Np * 2));
  auto* rows = static_cast<int16_t*>(arena.alloc(static_cast<size_t>(threads) * Kp * 2));
  auto* accs = static_cast<int32_t*>(arena.alloc(static_cast<size_t>(threads) * Np * 4));
  if (!bt || !rows || !accs) {
    arena.release_to(mark);
    return Status::Error("qmatmul: scratch arena too small");
  }
  const QDotRowFn dot = active_qdot_row();
  for (int b = 0; b < x.batch; ++b) {
    const uint8_t* A = x.a + b * x.a_batch_stride;
    const uint8_t* B = x.b + b * x.b_batch_stride;
    uint8_t* Y = x.y + static_cast<size_t>(b) * x.M * N;
    // B centred in k-pairs per column, zero padded to Kp x Np (padding adds nothing).
    if (b == 0 || x.b_batch_stride != 0) {
      for (int k = 0; k < Kp; ++k) {
        int16_t* r = bt + static_cast<size_t>(k / 2) * Np * 2 + (k & 1);
        const uint8_t* src = B + static_cast<size_t>(k) * N;
        for (int n = 0; n < Np; ++n) r[2 * n] = k < K && n < N ? static_cast<int16_t>(src[n] - x.b_zero_point) : 0;
      }
    }
    parallel_for(pool, x.M, [&](int m, int thread) {
      int16_t* row = rows + static_cast<size_t>(thread) * Kp;
      int32_t* acc = accs + static_cast<size_t>(thread) * Np;
      const uint8_t* a = A + static_cast<size_t>(m) * K;
      for (int k = 0; k < K; ++k) row[k] = static_cast<int16_t>(a[k] - x.a_zero_point);
      for (int k = K; k < Kp; ++k) row[k] = 0;
      dot(row, bt, Kp, Np, acc);
      uint8_t* y = Y + static_cast<size_t>(m) * N;
      for (int n = 0; n < N; ++n) {
        y[n] = static_cast<uint8_t>(requantize_scalar(acc[n], x.multiplier, x.y_zero_point, x.clamp_min, x.clamp_max));
      }
    });
  }
  arena.release_to(mark);
  return Status::Ok();
}

namespace ref {
void qmatmul(const QMatMulArgs& x) {
  for (int b = 0; b < x.batch; ++b)
    for (int m = 0; m < x.M; ++m)
      for (int n = 0; n < x.N; ++n) {
        int32_t s = 0;
        for (int k = 0; k < x.K; ++k) {
          const int32_t av = x.a[b * x.a_batch_stride + static_cast<size_t>(m) * x.K + k] - x.a_zero_point;
          const int32_t bv = x.b[b * x.b_batch_stride + static_cast<size_t>(k) * x.N + n] - x.b_zero_point;
          s += av * bv;
        }
        x.y[(static_cast<size_t>(b) * x.M + m) * x.N + n] =
            static_cast<uint8_t>(requantize_scalar(s, x.multiplier, x.y_zero_point, x.clamp_min, x.clamp_max));
      }
}
}  // namespace ref

}  // namespace edge::kernels

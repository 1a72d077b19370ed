#pragma once
// MatMul of two quantized activations (attention's Q x K^T and scores x V): both operands are
// uint8 with their own zero points, so neither can be pre-packed as weights.
//   y[b][m][n] = requantize(sum_k (a[b][m][k] - a_zp) * (bm[b][k][n] - b_zp))
// The sum is exact int32 (every product is at most 255 * 255, so K <= 33025 cannot overflow);
// requantization is the float32 one every kernel in this library shares (common.h), so every
// variant agrees with ref::qmatmul bit for bit. A batch stride of 0 broadcasts that operand.
// The SIMD versions (qmatmul_avx2.cc, qmatmul_neon.cc) follow the process-wide variant
// (dispatch.h): the x86 variants run the AVX2 one, the ARM variants the NEON one.
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/thread_pool.h"

namespace edge::kernels {

struct QMatMulArgs {
  int batch = 1, M = 0, K = 0, N = 0;
  const uint8_t* a = nullptr;  // [batch][M][K]
  size_t a_batch_stride = 0;   // elements between batches (0: one A for every batch)
  const uint8_t* b = nullptr;  // [batch][K][N]
  size_t b_batch_stride = 0;
  int32_t a_zero_point = 0, b_zero_point = 0;
  float multiplier = 1;        // a_scale * b_scale / y_scale, in float32
  int32_t y_zero_point = 0, clamp_min = 0, clamp_max = 255;
  uint8_t* y = nullptr;        // [batch][M][N]
};

constexpr int kQMatMulMaxK = 33025;

// Scratch for `threads` threads: B centred to int16 in k-pairs, one int16 row of A and one
// int32 row of sums per thread.
size_t qmatmul_scratch_bytes(int K, int N, int threads);
// Checks the arguments (shape limits, clamp inside [0, 255]) and runs; writes nothing on error.
Status qmatmul(const QMatMulArgs& args, Arena& arena, ThreadPool* pool = nullptr);

// One row of int16 products (internal; one per instruction set): for n < Np,
//   acc[n] = sum_{p < Kp/2} a[2p] * bp[(p * Np + n) * 2] + a[2p + 1] * bp[(p * Np + n) * 2 + 1]
// with both operands already centred, Kp even and Np a multiple of 8 (zero padded). B sits in
// k-pairs per column so x86's vpmaddwd and NEON's widening multiply-accumulate take 8 columns
// at once with A's pair broadcast, and no horizontal sums are needed.
using QDotRowFn = void (*)(const int16_t* a, const int16_t* bp, int Kp, int Np, int32_t* acc);
void qdot_row_scalar(const int16_t* a, const int16_t* bp, int Kp, int Np, int32_t* acc);
void qdot_row_avx2(const int16_t* a, const int16_t* bp, int Kp, int Np, int32_t* acc);
void qdot_row_neon(const int16_t* a, const int16_t* bp, int Kp, int Np, int32_t* acc);
// The one the active variant uses (null entries of other ISAs fall back to scalar).
QDotRowFn active_qdot_row();

namespace ref {
// The scalar oracle: the triple loop, exact int32 sums, the shared requantization.
void qmatmul(const QMatMulArgs& args);
}  // namespace ref

}  // namespace edge::kernels

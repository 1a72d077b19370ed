#pragma once
// int8 GEMM: C[M x N] = (A[M x K] - a_zp) * (B[K x N] - b_zp[n]) (+ bias[n]), with uint8 (or
// int8) activations A and int8 weights B, int32 accumulation, then either raw int32 output
// or requantization to uint8/int8 (OutputSpec in common.h).
//
// Weights are packed once at load time with pack_gemm_weights() into an opaque PackedWeights
// (variant-specific layout, column sums and weight zero points included). The packed object
// owns its memory; the source weights can be freed after packing. A PackedWeights remembers
// the variant it was packed for and gemm() runs that variant's kernel, so switching the active
// variant later never mixes layouts. Packing is the only allocation; gemm() allocates nothing.
//
// Exactness: every variant computes the exact int32 sum (no 16-bit saturation: the AVX2
// kernel widens to 16 bits and uses vpmaddwd, as XNNPACK and ruy do; for weights that all
// lie in [-64, 63] it packs for vpmaddubsw instead, which cannot saturate then), valid while
// K * 255 * 255 < 2^31, i.e. K <= 33025 (checked by pack_gemm_weights).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/common.h"
#include "kernels/dispatch.h"
#include "kernels/eltwise.h"
#include "kernels/thread_pool.h"

namespace edge::kernels {

// Where the weights come from.
struct WeightsSource {
  const int8_t* data = nullptr;  // borrowed during packing only
  int K = 0, N = 0;
  // false: data is K x N row-major (ONNX MatMul B). true: data is N x K row-major
  // (ONNX Conv weights [Cout][Cin/g * kh * kw], Gemm with transB=1).
  bool n_by_k = false;
  size_t ld = 0;                    // row stride in elements; 0 means dense (N, or K when n_by_k)
  const int32_t* zero_points = nullptr;  // 1 or N values in [-128, 127]; null means 0
  int zero_point_count = 1;
};

class PackedWeights {
 public:
  int K() const { return K_; }
  int N() const { return N_; }
  Variant variant() const { return variant_; }
  size_t bytes() const { return data_.size() + sizeof(int32_t) * (col_sums_.size() + zero_points_.size()); }

  // Layout details, used by the variant kernels (gemm_*.cc). Not for callers.
  int Kp() const { return Kp_; }       // K rounded up to the variant's k-group
  int Np() const { return Np_; }       // N rounded up to the variant's column block
  int nr() const { return nr_; }       // columns per panel
  int kgroup() const { return kgroup_; }
  const int8_t* panel(int n0) const { return base_ + static_cast<size_t>(n0) * Kp_; }
  const int32_t* col_sums() const { return col_sums_.data(); }     // Np values, sum_k B[k][n]
  const int32_t* zero_points() const { return zero_points_.data(); }  // Np values
  bool has_weight_zero_point() const { return has_b_zp_; }
  // True when every weight lies in [-64, 63] and the variant has a faster exact kernel for
  // such weights (AVX2: vpmaddubsw, gemm_avx2_q7.cc); decided at packing.
  bool narrow() const { return narrow_; }

 private:
  friend Status pack_gemm_weights(const WeightsSource&, Variant, std::unique_ptr<PackedWeights>*);
  int K_ = 0, N_ = 0, Kp_ = 0, Np_ = 0, nr_ = 0, kgroup_ = 1;
  Variant variant_ = Variant::Scalar;
  bool has_b_zp_ = false, narrow_ = false;
  std::vector<int8_t> data_;  // with slack so panels start 64-byte aligned at base_
  int8_t* base_ = nullptr;
  std::vector<int32_t> col_sums_, zero_points_;
};

// Packs for `variant` (use active_variant() normally). Fails on bad shapes or an unsupported
// variant.
Status pack_gemm_weights(const WeightsSource& src, Variant variant, std::unique_ptr<PackedWeights>* out);
inline Status pack_gemm_weights(const WeightsSource& src, std::unique_ptr<PackedWeights>* out) {
  return pack_gemm_weights(src, active_variant(), out);
}

struct GemmArgs {
  int M = 0;
  const void* a = nullptr;  // M x K activations, row stride lda (elements); borrowed
  size_t lda = 0;           // 0 means K
  QType a_type = QType::U8;
  int32_t a_zero_point = 0;
  const int32_t* bias = nullptr;  // N values or null; borrowed
  void* c = nullptr;              // M x N output, row stride ldc (elements); int32/u8/s8 per out.kind
  size_t ldc = 0;                 // 0 means N
  OutputSpec out;
  // Optional residual add in the output stage: as each tile of rows is finished (u8/s8 per
  // out), it is replaced by qadd(a = the tile, b = the same rows and columns of
  // residual_add->b, which has c's layout and row stride ldc) with residual_add's scales, zero
  // points and clamp (its a, y and count are ignored). Exactly qadd on the whole output
  // afterwards, while the tile is still in cache. Borrowed.
  const EltwiseArgs* residual_add = nullptr;
};

// Scratch the call needs from its arena for `M` rows with `threads` threads.
size_t gemm_scratch_bytes(const PackedWeights& w, int M, int threads);
// Runs the GEMM. pool may be null (calling thread only). Returns an error (and writes nothing)
// when arguments are inconsistent or the arena is too small.
Status gemm(const PackedWeights& w, const GemmArgs& args, Arena& arena, ThreadPool* pool = nullptr);

namespace ref {
// The scalar oracle on unpacked weights (B is K x N, dense unless ldb given): exact int32
// sums, then the same float32 requantization as every variant. Allocates nothing.
void gemm(int M, int N, int K, const void* a, size_t lda, QType a_type, int32_t a_zp, const int8_t* b, size_t ldb,
          const int32_t* b_zps, int b_zp_count, const int32_t* bias, const OutputSpec& out, void* c, size_t ldc);
// One output value: the requantization every variant must match.
int32_t requantize(int32_t acc, float scale, int32_t zero_point, int32_t lo, int32_t hi);
}  // namespace ref

}  // namespace edge::kernels

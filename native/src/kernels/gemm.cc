// GEMM driver: packing, argument checks, tiling across threads and the zero-point algebra.
// The instruction-set specific inner loops live in gemm_<isa>.cc (VariantKernels).
//
// Zero points are folded out of the inner loop:
//   sum_k (a - za)(b - zb) = raw + (flip - za) * colsum - zb * rowsum + K * za * zb
// where raw = sum_k (a - flip) * b is what the micro-kernel computes (flip = 128 for kernels
// that multiply signed by signed), colsum = sum_k b is computed at packing time and rowsum =
// sum_k a only when some weight zero point is non-zero. Additions wrap in uint32 so that
// intermediate overflow is harmless whenever the final value fits in int32.
#include "kernels/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/gemm_internal.h"

namespace edge::kernels {

namespace {
inline int32_t wrap_add(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}
inline int32_t wrap_mul(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) * static_cast<uint32_t>(b));
}
constexpr int kMaxK = 33025;  // K * 255 * 255 < 2^31
size_t out_elem_bytes(const OutputSpec& o) { return o.kind == OutputSpec::Kind::Int32 ? 4 : 1; }

// The 7-bit AVX2 kernel is on unless EDGE_AVX2_Q7=0 (for side-by-side measurements).
bool q7_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("EDGE_AVX2_Q7");
    return e == nullptr || std::strcmp(e, "0") != 0;
  }();
  return on;
}

// Whether the weights all lie in [-64, 63], where vpmaddubsw pairs cannot saturate.
template <typename At>
bool fits_7_bits(const WeightsSource& src, At at) {
  for (int n = 0; n < src.N; ++n)
    for (int k = 0; k < src.K; ++k) {
      const int8_t v = at(k, n);
      if (v < -64 || v > 63) return false;
    }
  return true;
}
}  // namespace

Status pack_gemm_weights(const WeightsSource& src, Variant variant, std::unique_ptr<PackedWeights>* out) {
  if (src.data == nullptr) return Status::Error("pack_gemm_weights: weights are null");
  if (src.K <= 0 || src.N <= 0) return Status::Error("pack_gemm_weights: K and N must be positive");
  if (src.K > kMaxK) return Status::Error("pack_gemm_weights: K must be at most 33025 so int32 sums cannot overflow");
  if (src.zero_point_count != 1 && src.zero_point_count != src.N)
    return Status::Error("pack_gemm_weights: zero_point_count must be 1 or N");
  const size_t ld = src.ld != 0 ? src.ld : static_cast<size_t>(src.n_by_k ? src.K : src.N);
  if (ld < static_cast<size_t>(src.n_by_k ? src.K : src.N)) return Status::Error("pack_gemm_weights: ld is smaller than a row");
  const VariantKernels* vk = variant_kernels(variant);
  if (vk == nullptr || !variant_supported(variant))
    return Status::Error("pack_gemm_weights: this CPU or build cannot run the requested kernel variant");
  auto at = [&](int k, int n) -> int8_t { return src.n_by_k ? src.data[n * ld + k] : src.data[k * ld + n]; };
  // 7-bit weights on AVX2: the vpmaddubsw kernel, which shares the driver's column terms and
  // output stage with the 8-bit one (same nr, col_align, a_flip) and differs in layout only.
  const VariantKernels* q7 = variant == Variant::Avx2 ? avx2_q7_kernels() : nullptr;
  const bool narrow = q7 != nullptr && q7->nr == vk->nr && q7->col_align == vk->col_align && q7->a_flip == vk->a_flip &&
                      q7_enabled() && fits_7_bits(src, at);
  if (narrow) vk = q7;

  auto w = std::unique_ptr<PackedWeights>(new PackedWeights());
  w->narrow_ = narrow;
  w->K_ = src.K;
  w->N_ = src.N;
  w->variant_ = variant;
  w->nr_ = vk->nr;
  w->kgroup_ = vk->kgroup;
  w->Kp_ = (src.K + vk->kgroup - 1) / vk->kgroup * vk->kgroup;
  w->Np_ = (src.N + vk->col_align - 1) / vk->col_align * vk->col_align;
  w->data_.assign(static_cast<size_t>(w->Np_) * w->Kp_ + 64, 0);
  w->base_ = w->data_.data() + ((64 - reinterpret_cast<uintptr_t>(w->data_.data()) % 64) % 64);
  w->col_sums_.assign(w->Np_, 0);
  w->zero_points_.assign(w->Np_, 0);
  for (int n = 0; n < src.N; ++n) {
    int32_t s = 0;
    for (int k = 0; k < src.K; ++k) s += at(k, n);
    w->col_sums_[n] = s;
    int32_t zp = src.zero_points ? src.zero_points[src.zero_point_count == 1 ? 0 : n] : 0;
    if (zp < -128 || zp > 127) return Status::Error("pack_gemm_weights: weight zero points must be in [-128, 127]");
    w->zero_points_[n] = zp;
    if (zp != 0) w->has_b_zp_ = true;
  }
  const int kg = vk->kgroup;
  for (int n0 = 0; n0 < w->Np_; n0 += vk->nr) {
    const int width = std::min(vk->nr, w->Np_ - n0);
    int8_t* panel = w->base_ + static_cast<size_t>(n0) * w->Kp_;
    for (int g = 0; g < w->Kp_ / kg; ++g) {
      for (int j = 0; j < width; ++j) {
        for (int kk = 0; kk < kg; ++kk) {
          const int k = g * kg + kk, n = n0 + j;
          panel[(static_cast<size_t>(g) * width + j) * kg + kk] = (k < src.K && n < src.N) ? at(k, n) : 0;
        }
      }
    }
  }
  *out = std::move(w);
  return Status::Ok();
}

void gemm_column_terms(const PackedWeights& w, const VariantKernels& vk, int32_t za, const int32_t* bias,
                       int32_t* colterm) {
  const int32_t* cs = w.col_sums();
  const int32_t* zb = w.zero_points();
  for (int n = 0; n < w.Np(); ++n) {
    int32_t t = (bias != nullptr && n < w.N()) ? bias[n] : 0;
    t = wrap_add(t, wrap_mul(w.K() * za, zb[n]));
    t = wrap_add(t, wrap_mul(vk.a_flip - za, cs[n]));
    colterm[n] = t;
  }
}

void gemm_block(const PackedWeights& w, const VariantKernels& variant_vk, const uint8_t* a, size_t lda, int rows,
                uint8_t a_xor, const int32_t* colterm, int n0, int n1, const OutputSpec& out, void* c, size_t ldc,
                int32_t* rowsum, int32_t* acc_tile) {
  // The weights' own micro-kernel (7-bit AVX2 weights run the vpmaddubsw one); nr and the
  // output stage are the variant's either way.
  const VariantKernels& vk = w.narrow() ? *avx2_q7_kernels() : variant_vk;
  const int K = w.K();
  const bool zb = w.has_weight_zero_point();
  if (zb) {
    for (int i = 0; i < rows; ++i) {
      const uint8_t* row = a + i * lda;
      int32_t s = 0;
      for (int k = 0; k < K; ++k) s += row[k] ^ a_xor;
      rowsum[i] = s;
    }
  }
  const size_t esize = out_elem_bytes(out);
  const bool per_channel = out.scale_count > 1;
  // Requantized outputs are finished in the micro-kernel's registers where the variant can.
  const bool fused = vk.microkernel_q != nullptr && out.kind != OutputSpec::Kind::Int32;
  for (int n = n0; n < n1; n += vk.nr) {
    const int width = std::min(vk.nr, w.Np() - n);
    const int valid = std::min(width, w.N() - n);
    const int8_t* panel = w.panel(n);
    for (int k0 = 0; k0 < K; k0 += vk.kblock) {
      const int kl = std::min(vk.kblock, K - k0);
      // k0 is a multiple of the k-group, so the block starts k0 * width bytes into the panel.
      const int8_t* block = panel + static_cast<size_t>(k0) * width;
      const bool last = k0 + kl >= K;
      for (int m = 0; m < rows; m += vk.mr) {
        const int r = std::min(vk.mr, rows - m);
        if (fused && last) {
          FusedFinish f{colterm + n, zb ? w.zero_points() + n : nullptr, zb ? rowsum + m : nullptr, &out,
                        out.scales + (per_channel ? n : 0), per_channel, valid,
                        static_cast<uint8_t*>(c) + m * ldc + n, ldc};
          vk.microkernel_q(r, a + m * lda + k0, lda, kl, block, width, a_xor, acc_tile + m * width, k0 > 0, f);
        } else {
          vk.microkernel(r, a + m * lda + k0, lda, kl, block, width, a_xor, acc_tile + m * width, k0 > 0);
        }
      }
    }
    if (fused) continue;
    for (int i = 0; i < rows; ++i) {
      void* y = static_cast<uint8_t*>(c) + (i * ldc + n) * esize;
      vk.finish_row(acc_tile + i * width, valid, colterm + n, zb ? w.zero_points() + n : nullptr, zb ? rowsum[i] : 0, out,
                    out.scales + (per_channel ? n : 0), y);
    }
  }
}

static const char* check_output(const OutputSpec& o, int channels) {
  if (o.kind == OutputSpec::Kind::Int32) return nullptr;
  if (o.scales == nullptr) return "output scales are null";
  if (o.scale_count != 1 && o.scale_count != channels) return "output scale_count must be 1 or the channel count";
  // Checked on every call (the kernel API takes them from JavaScript), so on the bits, with no
  // early exit, which vectorizes (a model's steps check ~17,000 channels a run; the float
  // comparisons one by one were 0.5-0.7% of MobileNetV2's run). A float is finite and positive
  // exactly when its bits minus one are below FLT_MAX's (0x7f7fffff): +0 wraps around, and
  // negatives, infinities and NaNs all lie above.
  uint32_t bad = 0;
  for (int i = 0; i < o.scale_count; ++i) {
    uint32_t u;
    std::memcpy(&u, o.scales + i, sizeof u);
    bad |= static_cast<uint32_t>(u - 1u >= 0x7f7fffffu);
  }
  if (bad != 0) return "output multipliers must be finite and positive";
  const QType t = o.kind == OutputSpec::Kind::U8 ? QType::U8 : QType::S8;
  if (o.zero_point < qmin(t) || o.zero_point > qmax(t)) return "output zero point is outside the output type's range";
  if (o.clamp_min < qmin(t) || o.clamp_max > qmax(t) || o.clamp_min > o.clamp_max)
    return "output clamp range must lie inside the output type's range with clamp_min <= clamp_max";
  return nullptr;
}
const char* check_output_spec(const OutputSpec& o, int channels) { return check_output(o, channels); }

size_t gemm_scratch_bytes(const PackedWeights& w, int M, int threads) {
  const int tile = std::min(M, kGemmTileRows);
  return arena_bytes(sizeof(int32_t) * w.Np()) + static_cast<size_t>(std::max(threads, 1)) * gemm_tile_scratch_bytes(std::max(tile, 1));
}

Status gemm(const PackedWeights& w, const GemmArgs& args, Arena& arena, ThreadPool* pool) {
  if (args.M < 0) return Status::Error("gemm: M must not be negative");
  if (args.M == 0) return Status::Ok();
  if (args.a == nullptr || args.c == nullptr) return Status::Error("gemm: a and c must not be null");
  const size_t lda = args.lda ? args.lda : w.K(), ldc = args.ldc ? args.ldc : w.N();
  if (lda < static_cast<size_t>(w.K()) || ldc < static_cast<size_t>(w.N())) return Status::Error("gemm: lda must be >= K and ldc >= N");
  if (args.a_zero_point < qmin(args.a_type) || args.a_zero_point > qmax(args.a_type))
    return Status::Error("gemm: activation zero point is outside the activation type's range");
  if (const char* e = check_output(args.out, w.N())) return Status::Error(e);
  const VariantKernels* vk = variant_kernels(w.variant());
  if (vk == nullptr) return Status::Error("gemm: weights were packed for a variant this build lacks");

  const int threads = pool_threads(pool);
  const size_t mark = arena.mark();
  auto* colterm = static_cast<int32_t*>(arena.alloc(sizeof(int32_t) * w.Np()));
  const int tile = std::min(args.M, gemm_balanced_tile(args.M, threads, vk->mr));
  auto* rowsums = static_cast<uint8_t*>(arena.alloc(static_cast<size_t>(threads) * gemm_tile_scratch_bytes(tile)));
  if (colterm == nullptr || rowsums == nullptr) {
    arena.release_to(mark);
    return Status::Error("gemm: the arena is smaller than gemm_scratch_bytes()");
  }
  const int32_t za = u8_zero_point(args.a_type, args.a_zero_point);
  const uint8_t a_xor = a_xor_for(args.a_type);
  gemm_column_terms(w, *vk, za, args.bias, colterm);

  const int mtiles = (args.M + tile - 1) / tile;
  const int panels = (w.Np() + vk->nr - 1) / vk->nr;
  // Few row tiles (a 7x7 map is one tile of 49 rows): split the columns into chunks of panels
  // too; a chunk re-reads the tile's rows (in cache) and nothing more.
  const int per_chunk = gemm_panels_per_chunk(panels, mtiles, threads);
  const int nchunks = (panels + per_chunk - 1) / per_chunk;
  const size_t esize = out_elem_bytes(args.out);
  const size_t per_thread = gemm_tile_scratch_bytes(tile);
  if (args.residual_add != nullptr) {
    const EltwiseArgs& r = *args.residual_add;
    if (args.out.kind == OutputSpec::Kind::Int32 || r.type != (args.out.kind == OutputSpec::Kind::U8 ? QType::U8 : QType::S8) ||
        r.b == nullptr || r.broadcast != Broadcast::Full) {
      arena.release_to(mark);
      return Status::Error("gemm: residual_add needs a requantized output and a full residual of the output's type");
    }
  }
  std::atomic<bool> add_failed{false};
  auto task = [&](int t, int thread) {
    const int mt = t / nchunks, nc = t % nchunks;
    const int m0 = mt * tile, rows = std::min(tile, args.M - m0);
    const int n0 = nc * per_chunk * vk->nr, n1 = std::min(w.Np(), (nc + 1) * per_chunk * vk->nr);
    gemm_block(w, *vk, static_cast<const uint8_t*>(args.a) + m0 * lda, lda, rows, a_xor, colterm, n0, n1, args.out,
               static_cast<uint8_t*>(args.c) + m0 * ldc * esize, ldc,
               reinterpret_cast<int32_t*>(rowsums + thread * per_thread),
               reinterpret_cast<int32_t*>(rowsums + thread * per_thread + arena_bytes(sizeof(int32_t) * tile)));
    if (args.residual_add == nullptr) return;
    // The residual add on the tile just written: its rows' columns [c0, c1) in one call.
    EltwiseArgs e = *args.residual_add;
    const int c0 = n0, c1 = std::min(n1, w.N());
    auto* y = static_cast<uint8_t*>(args.c);
    const auto* b = static_cast<const uint8_t*>(args.residual_add->b);
    const bool whole_rows = c0 == 0 && c1 == w.N() && ldc == static_cast<size_t>(w.N());
    const size_t off = m0 * ldc + c0;
    e.a = e.y = y + off;
    e.b = b + off;
    e.count = whole_rows ? static_cast<size_t>(rows) * ldc : static_cast<size_t>(c1 - c0);
    if (!qadd_rows(e, whole_rows ? 1 : rows, ldc).ok()) add_failed = true;
  };
  parallel_for(pool, mtiles * nchunks, task);
  arena.release_to(mark);
  if (add_failed) return Status::Error("gemm: the residual add's arguments are invalid");
  return Status::Ok();
}

namespace ref {

int32_t requantize(int32_t acc, float scale, int32_t zero_point, int32_t lo, int32_t hi) {
  return requantize_scalar(acc, scale, zero_point, lo, hi);
}

void gemm(int M, int N, int K, const void* a, size_t lda, QType a_type, int32_t a_zp, const int8_t* b, size_t ldb,
          const int32_t* b_zps, int b_zp_count, const int32_t* bias, const OutputSpec& out, void* c, size_t ldc) {
  if (lda == 0) lda = K;
  if (ldb == 0) ldb = N;
  if (ldc == 0) ldc = N;
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      const int32_t zb = b_zps ? b_zps[b_zp_count == 1 ? 0 : n] : 0;
      int64_t s = 0;
      for (int k = 0; k < K; ++k) {
        const int32_t av = a_type == QType::U8 ? static_cast<const uint8_t*>(a)[m * lda + k]
                                               : static_cast<const int8_t*>(a)[m * lda + k];
        s += static_cast<int64_t>(av - a_zp) * (b[k * ldb + n] - zb);
      }
      const int32_t acc = static_cast<int32_t>(s + (bias ? bias[n] : 0));
      switch (out.kind) {
        case OutputSpec::Kind::Int32: static_cast<int32_t*>(c)[m * ldc + n] = acc; break;
        case OutputSpec::Kind::U8:
          static_cast<uint8_t*>(c)[m * ldc + n] = static_cast<uint8_t>(
              requantize(acc, out.scales[out.scale_count > 1 ? n : 0], out.zero_point, out.clamp_min, out.clamp_max));
          break;
        case OutputSpec::Kind::S8:
          static_cast<int8_t*>(c)[m * ldc + n] = static_cast<int8_t>(
              requantize(acc, out.scales[out.scale_count > 1 ? n : 0], out.zero_point, out.clamp_min, out.clamp_max));
          break;
      }
    }
  }
}

}  // namespace ref
}  // namespace edge::kernels

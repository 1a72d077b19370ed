// GEMM: every shape set the reference libraries test, zero points, saturating sums, random
// cases; each result must equal ref::gemm exactly. Buffers end at a guard page.
#include <algorithm>

#include "kernels/gemm_internal.h"
#include "kernels/kernels.h"
#include "test_util.h"

namespace edge::test {
using namespace edge::kernels;

namespace {

struct GemmCase {
  int M = 1, N = 1, K = 1;
  QType a_type = QType::U8;
  int32_t a_zp = 0;
  // Narrow*: weights within 7 bits ([-64, 63]), which AVX2 runs with vpmaddubsw.
  enum class Fill { Random, MaxProducts, Alternating, Small, Narrow, NarrowEdges } fill = Fill::Random;
  bool b_zp_per_channel = false;
  int32_t b_zp = 0;  // when per-tensor
  bool bias = true;
  OutputSpec::Kind out = OutputSpec::Kind::U8;
  bool per_channel_scale = false;
  float scale = 0.001f;
  int32_t y_zp = 0;
  bool relu = false;
  int lda_pad = 0, ldc_pad = 0;
  bool threads = false;
  bool residual = false;  // GemmArgs::residual_add (requantized outputs only)
};

ThreadPool& pool3() {
  static ThreadPool p(3);
  return p;
}

std::string describe(const GemmCase& c) {
  return fmt("gemm[%s] M=%d N=%d K=%d a=%s a_zp=%d b_zp=%s%d fill=%d bias=%d out=%d pc=%d scale=%g y_zp=%d relu=%d lda+%d ldc+%d threads=%d",
             active_variant_name(), c.M, c.N, c.K, qtype_name(c.a_type), c.a_zp, c.b_zp_per_channel ? "per-channel," : "",
             c.b_zp, static_cast<int>(c.fill), c.bias, static_cast<int>(c.out), c.per_channel_scale, c.scale, c.y_zp,
             c.relu, c.lda_pad, c.ldc_pad, c.threads) + (c.residual ? " residual" : "");
}

bool run_case(Rng& rng, const GemmCase& c) {
  const size_t lda = c.K + c.lda_pad, ldc = c.N + c.ldc_pad;
  const size_t esize = c.out == OutputSpec::Kind::Int32 ? 4 : 1;
  GuardedBuffer a(c.M * lda), b(static_cast<size_t>(c.K) * c.N);
  GuardedBuffer y(((c.M - 1) * ldc + c.N) * esize), yref(((c.M - 1) * ldc + c.N) * esize);
  int8_t* bw = b.as<int8_t>();
  uint8_t* aw = a.as<uint8_t>();
  for (size_t i = 0; i < a.size(); ++i) {
    switch (c.fill) {
      case GemmCase::Fill::Random: aw[i] = static_cast<uint8_t>(rng.next()); break;
      case GemmCase::Fill::MaxProducts: aw[i] = c.a_type == QType::U8 ? 255 : 0x80; break;  // 255 or -128
      case GemmCase::Fill::Alternating: aw[i] = c.a_type == QType::U8 ? (i % 2 ? 255 : 0) : (i % 2 ? 0x7f : 0x80); break;
      case GemmCase::Fill::Small: aw[i] = static_cast<uint8_t>(c.a_zp + rng.uniform(-3, 3)); break;
      case GemmCase::Fill::Narrow: aw[i] = static_cast<uint8_t>(rng.next()); break;
      // u8 view 255 or 0 (the s8 bytes 0x7f and 0x80 read xor 0x80), in runs of four so a
      // k-group sees all-255 pairs against the extreme weights.
      case GemmCase::Fill::NarrowEdges:
        aw[i] = ((i / 4) % 3 != 2) ? (c.a_type == QType::U8 ? 255 : 0x7f) : (c.a_type == QType::U8 ? 0 : 0x80);
        break;
    }
  }
  for (size_t i = 0; i < b.size(); ++i) {
    switch (c.fill) {
      case GemmCase::Fill::Random: bw[i] = static_cast<int8_t>(rng.next()); break;
      case GemmCase::Fill::MaxProducts: bw[i] = -128; break;
      case GemmCase::Fill::Alternating: bw[i] = (i % 2) ? 127 : -128; break;
      case GemmCase::Fill::Small: bw[i] = static_cast<int8_t>(rng.uniform(-4, 4)); break;
      case GemmCase::Fill::Narrow: bw[i] = static_cast<int8_t>(rng.uniform(-64, 63)); break;
      // Whole columns of -64 and of 63 (every pair at +-32640 or 32130 against 255), and
      // columns alternating the two along k.
      case GemmCase::Fill::NarrowEdges: {
        const size_t n = i % c.N, k = i / c.N;
        bw[i] = n % 3 == 0 ? -64 : n % 3 == 1 ? 63 : (k % 2 ? 63 : -64);
        break;
      }
    }
  }
  std::vector<int32_t> bzp(c.b_zp_per_channel ? c.N : 1, c.b_zp);
  if (c.b_zp_per_channel)
    for (auto& z : bzp) z = rng.uniform(-128, 127);
  std::vector<int32_t> bias(c.N);
  for (auto& v : bias) v = rng.uniform(-100000, 100000);
  std::vector<float> scales(c.per_channel_scale ? c.N : 1, c.scale);
  if (c.per_channel_scale)
    for (auto& s : scales) s = c.scale * (0.25f + 2 * rng.unit());
  OutputSpec out = c.out == OutputSpec::Kind::Int32
                       ? OutputSpec::int32()
                       : OutputSpec::quantized(c.out == OutputSpec::Kind::U8 ? QType::U8 : QType::S8, scales.data(),
                                               static_cast<int>(scales.size()), c.y_zp);
  if (c.relu && c.out != OutputSpec::Kind::Int32) out.clamp_min = c.y_zp;

  WeightsSource src;
  src.data = bw;
  src.K = c.K;
  src.N = c.N;
  src.zero_points = bzp.data();
  src.zero_point_count = static_cast<int>(bzp.size());
  std::unique_ptr<PackedWeights> packed;
  Status st = pack_gemm_weights(src, &packed);
  if (!expect(st.ok(), describe(c) + " pack: " + (st.error ? st.error : ""))) return false;
  // 7-bit weights must take the vpmaddubsw kernel on AVX2 (and 8-bit ones must not).
  bool narrow = true;
  for (size_t i = 0; i < b.size(); ++i) narrow = narrow && bw[i] >= -64 && bw[i] <= 63;
  const char* q7 = std::getenv("EDGE_AVX2_Q7");  // "0" turns the 7-bit kernel off
  const bool q7_on = q7 == nullptr || std::strcmp(q7, "0") != 0;
  if (!expect(packed->narrow() == (narrow && active_variant() == Variant::Avx2 && q7_on),
              describe(c) + " the 7-bit kernel choice"))
    return false;

  ThreadPool* pool = c.threads ? &pool3() : nullptr;
  const size_t scratch = gemm_scratch_bytes(*packed, c.M, pool_threads(pool));
  GuardedBuffer arena_mem(scratch);
  Arena arena(arena_mem.as(), scratch);
  // Pre-fill the gap between output rows; it must survive untouched.
  std::memset(y.as(), 0x5A, y.size());
  std::memset(yref.as(), 0x5A, yref.size());
  GemmArgs args;
  args.M = c.M;
  args.a = aw;
  args.lda = lda;
  args.a_type = c.a_type;
  args.a_zero_point = c.a_zp;
  args.bias = c.bias ? bias.data() : nullptr;
  args.c = y.as();
  args.ldc = ldc;
  args.out = out;
  // The residual add: the reference is ref::qadd on each finished row.
  GuardedBuffer res(y.size());
  for (size_t i = 0; i < res.size(); ++i) res.as<uint8_t>()[i] = static_cast<uint8_t>(rng.next());
  EltwiseArgs add;
  const bool with_res = c.residual && c.out != OutputSpec::Kind::Int32;
  if (with_res) {
    add.type = c.out == OutputSpec::Kind::U8 ? QType::U8 : QType::S8;
    add.a_scale = 0.02f + 0.05f * rng.unit();
    add.b_scale = 0.02f + 0.05f * rng.unit();
    add.y_scale = 0.03f + 0.08f * rng.unit();
    const int32_t lo = add.type == QType::U8 ? 0 : -128;
    add.a_zero_point = c.y_zp;
    add.b_zero_point = lo + rng.uniform(0, 255);
    add.y_zero_point = lo + rng.uniform(0, 255);
    if (rng.uniform(0, 1)) add.clamp_min = add.y_zero_point;
    add.b = res.as();
    args.residual_add = &add;
  }
  st = gemm(*packed, args, arena, pool);
  if (!expect(st.ok(), describe(c) + " gemm: " + (st.error ? st.error : ""))) return false;
  ref::gemm(c.M, c.N, c.K, aw, lda, c.a_type, c.a_zp, bw, c.N, bzp.data(), static_cast<int>(bzp.size()),
            c.bias ? bias.data() : nullptr, out, yref.as(), ldc);
  if (with_res) {
    for (int m = 0; m < c.M; ++m) {
      EltwiseArgs e = add;
      e.a = e.y = yref.as<uint8_t>() + m * ldc;
      e.b = res.as<uint8_t>() + m * ldc;
      e.count = c.N;
      ref::qadd(e);
    }
  }
  for (size_t i = 0; i < y.size(); ++i) {
    if (y.as()[i] != yref.as()[i]) {
      const size_t e = i / esize;
      return expect(false, describe(c) + fmt(" first mismatch at row %zu col %zu", e / ldc, e % ldc));
    }
  }
  return expect(true, describe(c));
}

GemmCase random_case(Rng& rng, int M, int N, int K) {
  static const std::vector<int32_t> kZps = {0, 18, 75, 128, 157, 231, 255};
  GemmCase c;
  c.M = M;
  c.N = N;
  c.K = K;
  c.a_type = rng.uniform(0, 3) == 0 ? QType::S8 : QType::U8;
  c.a_zp = rng.pick(kZps) - (c.a_type == QType::S8 ? 128 : 0);
  const int zb = rng.uniform(0, 5);
  c.b_zp_per_channel = zb == 0;
  c.b_zp = zb == 1 ? rng.uniform(-128, 127) : 0;
  c.bias = rng.uniform(0, 1);
  const int o = rng.uniform(0, 4);
  c.out = o == 0 ? OutputSpec::Kind::Int32 : o == 1 ? OutputSpec::Kind::S8 : OutputSpec::Kind::U8;
  c.per_channel_scale = rng.uniform(0, 2) == 0;
  const float scales[] = {1e-7f, 1e-5f, 1e-4f, 3e-4f, 1e-3f, 0.01f, 0.5f, 3.0f, 1e4f};
  c.scale = scales[rng.uniform(0, 8)];
  c.y_zp = c.out == OutputSpec::Kind::S8 ? rng.uniform(-128, 127) : rng.pick(kZps);
  c.relu = rng.uniform(0, 3) == 0;
  if (rng.uniform(0, 3) == 0) c.lda_pad = rng.uniform(1, 9);
  if (rng.uniform(0, 3) == 0) c.ldc_pad = rng.uniform(1, 9);
  c.threads = rng.uniform(0, 3) == 0;
  c.residual = rng.uniform(0, 3) == 0;
  return c;
}

}  // namespace

void run_gemm_tests(Rng& rng, int cases) {
  // 1. Every M, N, K in 1..15.
  for (int M = 1; M <= 15; ++M)
    for (int N = 1; N <= 15; ++N)
      for (int K = 1; K <= 15; ++K) run_case(rng, random_case(rng, M, N, K));
  // 2. Powers of two to 256.
  for (int M = 1; M <= 256; M *= 2)
    for (int N = 1; N <= 256; N *= 2)
      for (int K = 1; K <= 256; K *= 2) run_case(rng, random_case(rng, M, N, K));
  // 3. The K set of the reference libraries with assorted M, N.
  const int ks[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 20, 27, 31, 33, 63, 65, 118, 119, 120, 121, 122, 127, 129, 160, 240, 320};
  for (int K : ks)
    for (int i = 0; i < 4; ++i) run_case(rng, random_case(rng, rng.uniform(1, 20), rng.uniform(1, 80), K));
  // 4. M = 1 with N or K up to 95.
  for (int x = 1; x <= 95; ++x) {
    run_case(rng, random_case(rng, 1, x, rng.uniform(1, 95)));
    run_case(rng, random_case(rng, 1, rng.uniform(1, 95), x));
  }
  // 5. One large odd case, and K past the x86 K block (kX86KBlock, 4096): the sums of the
  //    first block are stored and reloaded under the second, which finishes them.
  run_case(rng, random_case(rng, 43, 401, 500));
  for (int i = 0; i < 4; ++i) run_case(rng, random_case(rng, rng.uniform(1, 20), rng.uniform(1, 130), rng.uniform(4090, 8300)));
  // 6. Saturation: every product 255 * -128 (the vpmaddubsw worst case), and alternating
  //    extremes, at large K; the int32 output shows the exact sum.
  for (int K : {2, 3, 64, 127, 1000, 4097}) {
    for (auto fill : {GemmCase::Fill::MaxProducts, GemmCase::Fill::Alternating}) {
      for (QType t : {QType::U8, QType::S8}) {
        GemmCase c;
        c.M = 5;
        c.N = 37;
        c.K = K;
        c.a_type = t;
        c.fill = fill;
        c.out = OutputSpec::Kind::Int32;
        c.bias = false;
        run_case(rng, c);
        c.out = OutputSpec::Kind::U8;
        c.scale = 1e-6f;
        c.y_zp = 128;
        c.b_zp = -128;
        run_case(rng, c);
      }
    }
  }
  // 7. Values near the zero points (tiny sums), scales that round exactly at .5.
  for (int i = 0; i < 20; ++i) {
    GemmCase c = random_case(rng, rng.uniform(1, 9), rng.uniform(1, 70), rng.uniform(1, 70));
    c.fill = GemmCase::Fill::Small;
    c.scale = 0.5f;
    run_case(rng, c);
  }
  // 8. Weights within 7 bits (AVX2: the vpmaddubsw kernel): random shapes, every zero point,
  //    and the extremes -64 / 63 against activations 255 / 0 at large K, where a saturating
  //    int16 pair or a lost carry would show in the int32 output.
  for (int i = 0; i < cases / 2 + 20; ++i) {
    const int M = rng.uniform(0, 3) == 0 ? 1 : rng.uniform(1, 60);
    GemmCase c = random_case(rng, M, rng.uniform(1, 160), rng.uniform(1, 300));
    c.fill = GemmCase::Fill::Narrow;
    run_case(rng, c);
  }
  for (int K : {1, 2, 3, 4, 5, 7, 8, 255, 256, 257, 1001, 4099}) {
    for (QType t : {QType::U8, QType::S8}) {
      for (int32_t zp : {0, 1, 77, 128, 200, 255}) {
        GemmCase c;
        c.M = 6;
        c.N = 21;
        c.K = K;
        c.a_type = t;
        c.a_zp = zp - (t == QType::S8 ? 128 : 0);
        c.fill = GemmCase::Fill::NarrowEdges;
        c.out = OutputSpec::Kind::Int32;
        c.b_zp = zp == 77 ? 63 : zp == 200 ? -64 : 0;
        c.b_zp_per_channel = zp == 1;
        run_case(rng, c);
        c.out = OutputSpec::Kind::U8;
        c.scale = 1e-5f;
        c.y_zp = 128;
        c.threads = zp == 128;
        run_case(rng, c);
      }
    }
  }
  // 9. Row tiles: equal, at least one per thread, a multiple of the threads while there are few
  //    (14x14 = 196 rows on 2 threads: 4 tiles of 49, not 66 + 66 + 64, which left one thread
  //    two thirds of the step), and the threaded GEMM exact on the shapes that round up.
  const auto tiles_of = [](int M, int threads, int mr) {
    const int T = gemm_balanced_tile(M, threads, mr);
    return std::make_pair(T, (M + T - 1) / T);
  };
  expect(tiles_of(196, 2, 8) == std::make_pair(49, 4), "gemm_balanced_tile: 196 rows on 2 threads are 4 tiles of 49");
  expect(tiles_of(49, 2, 8) == std::make_pair(25, 2), "gemm_balanced_tile: 49 rows on 2 threads are 25 + 24");
  expect(tiles_of(784, 2, 8) == std::make_pair(79, 10), "gemm_balanced_tile: 784 rows on 2 threads are 10 tiles of 79");
  expect(tiles_of(3136, 2, 8).second == 33, "gemm_balanced_tile: 3136 rows on 2 threads stay 33 tiles (many: the claiming evens them)");
  expect(tiles_of(300, 3, 8) == std::make_pair(50, 6), "gemm_balanced_tile: 300 rows on 3 threads are 6 tiles of 50");
  expect(tiles_of(20, 2, 8) == std::make_pair(10, 2), "gemm_balanced_tile: 20 rows on 2 threads are 10 + 10");
  expect(tiles_of(100, 1, 8) == std::make_pair(50, 2), "gemm_balanced_tile: one thread keeps tiles of at most 96 rows");
  for (int M : {196, 290, 300, 384, 500, 1000}) {
    GemmCase c = random_case(rng, M, rng.uniform(1, 200), rng.uniform(1, 200));
    c.threads = true;
    run_case(rng, c);
  }
  // 10. Random shapes.
  for (int i = 0; i < cases; ++i) {
    const int M = rng.uniform(0, 4) == 0 ? 1 : rng.uniform(1, 100);
    run_case(rng, random_case(rng, M, rng.uniform(1, 300), rng.uniform(1, 300)));
  }
}

}  // namespace edge::test

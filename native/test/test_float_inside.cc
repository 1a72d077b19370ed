// MatMul of two activations (exact, every variant against ref::qmatmul and against the triple
// loop written out here) and the float-inside ops (softmax, layer normalisation, resize)
// against float64 references: at most one output step apart.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernels.h"
#include "test_util.h"

namespace edge::test {
using namespace edge::kernels;

namespace {

int quant64(double v, int zp) { return static_cast<int>(std::min(std::max(std::nearbyint(v) + zp, 0.0), 255.0)); }

void qmatmul_cases(Rng& rng, int cases) {
  std::vector<uint8_t> scratch;
  for (int i = 0; i < cases / 3 + 12; ++i) {
    QMatMulArgs x;
    const std::vector<int> dims = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33};
    x.batch = rng.uniform(1, 3);
    x.M = rng.uniform(0, 3) ? rng.pick(dims) : rng.uniform(1, 40);
    x.N = rng.uniform(0, 3) ? rng.pick(dims) : rng.uniform(1, 40);
    x.K = i == 0 ? 2000 : (rng.uniform(0, 3) ? rng.pick(dims) : rng.uniform(1, 100));
    const bool a_bc = rng.uniform(0, 4) == 0, b_bc = !a_bc && rng.uniform(0, 4) == 0;
    const size_t an = (a_bc ? 1 : x.batch) * static_cast<size_t>(x.M) * x.K;
    const size_t bn = (b_bc ? 1 : x.batch) * static_cast<size_t>(x.K) * x.N;
    const size_t yn = static_cast<size_t>(x.batch) * x.M * x.N;
    GuardedBuffer a(an), b(bn), y(yn), yr(yn);
    // Extremes now and then: 0 and 255 against zero point 0 are the largest products.
    const bool extreme = rng.uniform(0, 5) == 0;
    for (size_t j = 0; j < an; ++j) a.as()[j] = extreme ? 255 : static_cast<uint8_t>(rng.next());
    for (size_t j = 0; j < bn; ++j) b.as()[j] = extreme ? 0 : static_cast<uint8_t>(rng.next());
    x.a = a.as();
    x.b = b.as();
    x.a_batch_stride = a_bc ? 0 : static_cast<size_t>(x.M) * x.K;
    x.b_batch_stride = b_bc ? 0 : static_cast<size_t>(x.K) * x.N;
    x.a_zero_point = extreme ? 0 : rng.uniform(0, 255);
    x.b_zero_point = extreme ? 255 : rng.uniform(0, 255);
    x.multiplier = 1.0f / (40.0f * std::sqrt(static_cast<float>(x.K)) * (1 + rng.unit() * 60));
    x.y_zero_point = rng.uniform(0, 255);
    x.clamp_min = rng.uniform(0, 3) ? 0 : rng.uniform(0, 100);
    x.clamp_max = rng.uniform(0, 3) ? 255 : rng.uniform(x.clamp_min, 255);
    const int threads = rng.uniform(1, 3);
    ThreadPool pool(threads);
    scratch.assign(qmatmul_scratch_bytes(x.K, x.N, threads), 0);
    Arena arena(scratch.data(), scratch.size());
    x.y = y.as();
    const Status st = qmatmul(x, arena, &pool);
    QMatMulArgs r = x;
    r.y = yr.as();
    ref::qmatmul(r);
    bool same = st.ok(), formula = true;
    for (size_t j = 0; j < yn && same; ++j) same = y.as()[j] == yr.as()[j];
    // The oracle itself against the definition, spot-checked in 64-bit.
    for (int s = 0; s < 8; ++s) {
      const int bt = rng.uniform(0, x.batch - 1), m = rng.uniform(0, x.M - 1), n = rng.uniform(0, x.N - 1);
      int64_t acc = 0;
      for (int k = 0; k < x.K; ++k) {
        acc += static_cast<int64_t>(x.a[bt * x.a_batch_stride + static_cast<size_t>(m) * x.K + k] - x.a_zero_point) *
               (x.b[bt * x.b_batch_stride + static_cast<size_t>(k) * x.N + n] - x.b_zero_point);
      }
      float f = static_cast<float>(acc) * x.multiplier;
      f = std::min(std::max(f, static_cast<float>(x.clamp_min - x.y_zero_point)), static_cast<float>(x.clamp_max - x.y_zero_point));
      formula = formula && yr.as()[(static_cast<size_t>(bt) * x.M + m) * x.N + n] == static_cast<int>(std::nearbyint(f)) + x.y_zero_point;
    }
    // The raw int32 sums of the variant's dot-product row, exactly (requantization can hide a
    // wrong low bit; the sums cannot).
    const int Kp = (x.K + 1) & ~1, Np = (x.N + 7) & ~7;
    std::vector<int16_t> arow(Kp, 0), bp(static_cast<size_t>(Kp) * Np, 0);
    std::vector<int32_t> acc(Np), want(Np, 0);
    for (int k = 0; k < x.K; ++k) arow[k] = static_cast<int16_t>(x.a[k] - x.a_zero_point);
    for (int n = 0; n < x.N; ++n)
      for (int k = 0; k < x.K; ++k) {
        const int16_t bv = static_cast<int16_t>(x.b[static_cast<size_t>(k) * x.N + n] - x.b_zero_point);
        bp[(static_cast<size_t>(k / 2) * Np + n) * 2 + (k & 1)] = bv;
        want[n] += arow[k] * bv;
      }
    active_qdot_row()(arow.data(), bp.data(), Kp, Np, acc.data());
    bool sums = acc == want;
    expect(sums, fmt("qmatmul dot row %s K=%d N=%d: int32 sums differ", active_variant_name(), x.K, x.N));
    expect(same && formula, fmt("qmatmul %s batch=%d M=%d K=%d N=%d zps=%d,%d bc=%d,%d threads=%d: %s", active_variant_name(), x.batch,
                                x.M, x.K, x.N, x.a_zero_point, x.b_zero_point, a_bc, b_bc, threads,
                                st.ok() ? (same ? "oracle differs from the formula" : "differs from ref::qmatmul") : st.error));
  }
  // Refusals: K past the exact int32 limit, clamp outside the u8 range, a short arena.
  QMatMulArgs bad;
  uint8_t one = 0;
  bad.a = bad.b = bad.y = &one;
  bad.M = bad.N = 1;
  bad.K = kQMatMulMaxK + 1;
  Arena none;
  expect(!qmatmul(bad, none).ok(), "qmatmul refuses K beyond 33025");
  bad.K = 1;
  bad.clamp_max = 300;
  expect(!qmatmul(bad, none).ok(), "qmatmul refuses a clamp outside [0, 255]");
  bad.clamp_max = 255;
  expect(!qmatmul(bad, none).ok(), "qmatmul refuses an arena that is too small");
}

void softmax_cases(Rng& rng, int cases) {
  for (int i = 0; i < cases / 6 + 8; ++i) {
    SoftmaxArgs s;
    s.outer = rng.uniform(1, 4);
    s.axis = rng.uniform(0, 4) ? rng.uniform(1, 40) : rng.uniform(100, 1000);
    // inner >= 64: the kernel's blocks of 64 slices (YOLOv8's DFL head: axis 16, inner 8400).
    s.inner = rng.uniform(0, 2) == 0 ? 1 : rng.uniform(0, 1) ? rng.uniform(1, 5) : rng.uniform(64, 150);
    const float xs = 0.001f + rng.unit() * 0.2f;
    s.y_scale = rng.uniform(0, 1) ? 1.0f / 256 : 1.0f / (50 + rng.uniform(0, 200));
    s.y_zero_point = rng.uniform(0, 1) ? 0 : rng.uniform(0, 20);
    const size_t n = s.outer * s.axis * s.inner;
    GuardedBuffer x(n), y(n);
    for (size_t j = 0; j < n; ++j) x.as()[j] = static_cast<uint8_t>(rng.next());
    s.x = x.as();
    s.y = y.as();
    const SoftmaxTable t = build_softmax_table(xs);
    ThreadPool pool(rng.uniform(1, 2));
    const Status st = qsoftmax(t, s, &pool);
    int worst = 0;
    for (size_t o = 0; o < s.outer; ++o)
      for (size_t in = 0; in < s.inner; ++in) {
        double mx = -1e300, sum = 0;
        const int xzp = 77;  // any zero point: softmax does not see it
        auto real = [&](size_t k) { return (static_cast<double>(x.as()[(o * s.axis + k) * s.inner + in]) - xzp) * xs; };
        for (size_t k = 0; k < s.axis; ++k) mx = std::max(mx, real(k));
        for (size_t k = 0; k < s.axis; ++k) sum += std::exp(real(k) - mx);
        for (size_t k = 0; k < s.axis; ++k) {
          const int want = quant64(std::exp(real(k) - mx) / sum / s.y_scale, s.y_zero_point);
          worst = std::max(worst, std::abs(want - y.as()[(o * s.axis + k) * s.inner + in]));
        }
      }
    expect(st.ok() && worst <= 1, fmt("softmax outer=%zu axis=%zu inner=%zu x_scale=%g y_scale=%g: worst %d steps from float64", s.outer,
                                      s.axis, s.inner, xs, s.y_scale, worst));
  }
}

void layernorm_cases(Rng& rng, int cases) {
  for (int i = 0; i < cases / 6 + 8; ++i) {
    LayerNormArgs a;
    a.rows = rng.uniform(1, 6);
    a.len = rng.uniform(0, 4) ? rng.uniform(1, 64) : rng.uniform(100, 500);
    a.x_scale = 0.005f + rng.unit() * 0.1f;
    a.x_zero_point = rng.uniform(0, 255);
    a.epsilon = rng.uniform(0, 1) ? 1e-5f : 1e-6f * rng.uniform(1, 1000);
    a.y_scale = 0.01f + rng.unit() * 0.05f;
    a.y_zero_point = rng.uniform(0, 255);
    std::vector<float> g(a.len), b(a.len);
    for (size_t k = 0; k < a.len; ++k) {
      g[k] = 0.2f + rng.unit() * 1.5f;
      b[k] = (rng.unit() - 0.5f) * 0.5f;
    }
    const bool affine = rng.uniform(0, 3) != 0;
    a.gamma = affine ? g.data() : nullptr;
    a.beta = affine ? b.data() : nullptr;
    const size_t n = a.rows * a.len;
    GuardedBuffer x(n), y(n);
    // Narrow rows now and then (constant rows give variance 0: the output is beta).
    const int spread = rng.uniform(0, 3) == 0 ? rng.uniform(0, 3) : 255;
    const int base = rng.uniform(0, 255 - spread);
    for (size_t j = 0; j < n; ++j) x.as()[j] = static_cast<uint8_t>(base + (spread ? rng.next() % (spread + 1) : 0));
    a.x = x.as();
    a.y = y.as();
    ThreadPool pool(rng.uniform(1, 2));
    const Status st = qlayernorm(a, &pool);
    int worst = 0;
    for (size_t r = 0; r < a.rows; ++r) {
      double mean = 0, var = 0;
      for (size_t k = 0; k < a.len; ++k) mean += (x.as()[r * a.len + k] - a.x_zero_point) * static_cast<double>(a.x_scale);
      mean /= a.len;
      for (size_t k = 0; k < a.len; ++k) {
        const double d = (x.as()[r * a.len + k] - a.x_zero_point) * static_cast<double>(a.x_scale) - mean;
        var += d * d;
      }
      var /= a.len;
      for (size_t k = 0; k < a.len; ++k) {
        const double d = (x.as()[r * a.len + k] - a.x_zero_point) * static_cast<double>(a.x_scale) - mean;
        const double v = d / std::sqrt(var + a.epsilon) * (affine ? g[k] : 1.0) + (affine ? b[k] : 0.0);
        worst = std::max(worst, std::abs(quant64(v / a.y_scale, a.y_zero_point) - y.as()[r * a.len + k]));
      }
    }
    expect(st.ok() && worst <= 1, fmt("layernorm rows=%zu len=%zu spread=%d affine=%d: worst %d steps from float64", a.rows, a.len, spread,
                                      affine, worst));
  }
}

void resize_cases(Rng& rng, int cases) {
  for (int i = 0; i < cases / 6 + 8; ++i) {
    ResizeArgs a;
    a.batch = rng.uniform(1, 2);
    a.H = rng.uniform(1, 9);
    a.W = rng.uniform(1, 9);
    a.C = rng.uniform(1, 19);
    a.OH = rng.uniform(1, 20);
    a.OW = rng.uniform(1, 20);
    a.linear = rng.uniform(0, 1);
    std::vector<int32_t> y0(a.OH), y1(a.OH), x0(a.OW), x1(a.OW);
    std::vector<float> wy(a.OH), wx(a.OW);
    for (int k = 0; k < a.OH; ++k) y0[k] = rng.uniform(0, a.H - 1), y1[k] = rng.uniform(0, a.H - 1), wy[k] = rng.unit();
    for (int k = 0; k < a.OW; ++k) x0[k] = rng.uniform(0, a.W - 1), x1[k] = rng.uniform(0, a.W - 1), wx[k] = rng.unit();
    a.y0 = y0.data(); a.y1 = y1.data(); a.wy = wy.data();
    a.x0 = x0.data(); a.x1 = x1.data(); a.wx = wx.data();
    a.x_scale = 0.02f + rng.unit() * 0.05f;
    a.x_zero_point = rng.uniform(0, 255);
    const bool same = rng.uniform(0, 1);
    a.y_scale = same ? a.x_scale : 0.02f + rng.unit() * 0.05f;
    a.y_zero_point = same ? a.x_zero_point : rng.uniform(0, 255);
    const size_t xn = static_cast<size_t>(a.batch) * a.H * a.W * a.C, yn = static_cast<size_t>(a.batch) * a.OH * a.OW * a.C;
    GuardedBuffer x(xn), y(yn);
    for (size_t j = 0; j < xn; ++j) x.as()[j] = static_cast<uint8_t>(rng.next());
    a.x = x.as();
    a.y = y.as();
    ThreadPool pool(rng.uniform(1, 2));
    const Status st = qresize(a, &pool);
    int worst = 0;
    bool exact = true;
    for (int n = 0; n < a.batch; ++n)
      for (int oy = 0; oy < a.OH; ++oy)
        for (int ox = 0; ox < a.OW; ++ox)
          for (int c = 0; c < a.C; ++c) {
            auto at = [&](int yy, int xx) { return (x.as()[((static_cast<size_t>(n) * a.H + yy) * a.W + xx) * a.C + c] - a.x_zero_point) * static_cast<double>(a.x_scale); };
            double v;
            if (a.linear) {
              const double u = wy[oy], w = wx[ox];
              v = (1 - u) * ((1 - w) * at(y0[oy], x0[ox]) + w * at(y0[oy], x1[ox])) + u * ((1 - w) * at(y1[oy], x0[ox]) + w * at(y1[oy], x1[ox]));
            } else {
              v = at(y0[oy], x0[ox]);
            }
            const int got = y.as()[((static_cast<size_t>(n) * a.OH + oy) * a.OW + ox) * a.C + c];
            const int want = quant64(v / a.y_scale, a.y_zero_point);
            worst = std::max(worst, std::abs(want - got));
            if (!a.linear && same) exact = exact && got == x.as()[((static_cast<size_t>(n) * a.H + y0[oy]) * a.W + x0[ox]) * a.C + c];
          }
    expect(st.ok() && worst <= 1 && exact, fmt("resize %s %dx%d -> %dx%d C=%d same-scale=%d: worst %d steps from float64%s", a.linear ? "linear" : "nearest",
                                               a.H, a.W, a.OH, a.OW, a.C, same, worst, exact ? "" : ", nearest copy not exact"));
    y0[0] = a.H;  // out of range: refused before anything is written
    expect(!qresize(a).ok(), "resize refuses a row index past H");
  }
}

}  // namespace

void run_float_inside_tests(Rng& rng, int cases) {
  qmatmul_cases(rng, cases);
  softmax_cases(rng, cases);
  layernorm_cases(rng, cases);
  resize_cases(rng, cases);
}

}  // namespace edge::test

// Pooling, elementwise add/mul and lookup-table activations against formulas written out here.
#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "test_util.h"

namespace edge::test {
using namespace edge::kernels;

namespace {
int32_t rq(float v, int32_t zp, int32_t lo, int32_t hi) {
  v = std::fmin(std::fmax(v, static_cast<float>(lo - zp)), static_cast<float>(hi - zp));
  return static_cast<int32_t>(std::rint(v)) + zp;
}
int32_t get(const void* p, QType t, size_t i) {
  return t == QType::U8 ? static_cast<const uint8_t*>(p)[i] : static_cast<const int8_t*>(p)[i];
}

void pool_cases(Rng& rng, int cases) {
  for (int i = 0; i < cases / 4 + 10; ++i) {
    PoolShape s;
    s.batch = rng.uniform(1, 2);
    s.C = rng.uniform(1, 20);
    s.kernel_h = rng.uniform(1, 3);
    s.kernel_w = rng.uniform(1, 3);
    s.stride_h = rng.uniform(1, 2);
    s.stride_w = rng.uniform(1, 2);
    s.pad_top = rng.uniform(0, s.kernel_h - 1);
    s.pad_left = rng.uniform(0, s.kernel_w - 1);
    s.pad_bottom = rng.uniform(0, s.kernel_h - 1);
    s.pad_right = rng.uniform(0, s.kernel_w - 1);
    s.H = rng.uniform(s.kernel_h, 9);
    s.W = rng.uniform(s.kernel_w, 9);
    s.count_include_pad = rng.uniform(0, 1);
    const QType t = rng.uniform(0, 1) ? QType::U8 : QType::S8;
    const size_t xn = static_cast<size_t>(s.batch) * s.H * s.W * s.C;
    const size_t yn = static_cast<size_t>(s.batch) * s.out_h() * s.out_w() * s.C;
    GuardedBuffer x(xn), ymax(yn), yavg(yn);
    for (size_t j = 0; j < xn; ++j) x.as()[j] = static_cast<uint8_t>(rng.next());
    const float xs = 0.01f + rng.unit(), ys = 0.01f + rng.unit();
    const int32_t xz = rng.uniform(qmin(t), qmax(t)), yz = rng.uniform(qmin(t), qmax(t));
    const size_t scratch = avg_pool_scratch_bytes(s, 1);
    GuardedBuffer am(scratch);
    Arena arena(am.as(), scratch);
    bool ok = max_pool(s, x.as(), t, ymax.as()).ok() && avg_pool(s, x.as(), t, xs, xz, ys, yz, yavg.as(), arena).ok();
    for (int n = 0; ok && n < s.batch; ++n)
      for (int oh = 0; oh < s.out_h(); ++oh)
        for (int ow = 0; ow < s.out_w(); ++ow)
          for (int c = 0; c < s.C; ++c) {
            int32_t mx = INT32_MIN, sum = 0, count = 0, padded = 0;
            for (int ky = 0; ky < s.kernel_h; ++ky)
              for (int kx = 0; kx < s.kernel_w; ++kx) {
                const int ih = oh * s.stride_h - s.pad_top + ky, iw = ow * s.stride_w - s.pad_left + kx;
                if (ih >= -s.pad_top && ih < s.H + s.pad_bottom && iw >= -s.pad_left && iw < s.W + s.pad_right) ++padded;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                const int32_t v = get(x.as(), t, ((static_cast<size_t>(n) * s.H + ih) * s.W + iw) * s.C + c);
                mx = std::max(mx, v);
                sum += v - xz;
                ++count;
              }
            const size_t o = ((static_cast<size_t>(n) * s.out_h() + oh) * s.out_w() + ow) * s.C + c;
            const int d = s.count_include_pad ? padded : count;
            const int32_t avg = rq(static_cast<float>(sum) * (xs / (ys * static_cast<float>(d))), yz, qmin(t), qmax(t));
            if (get(ymax.as(), t, o) != mx || get(yavg.as(), t, o) != avg) ok = false;
          }
    expect(ok, fmt("pool %s %dx%dx%d k=%dx%d s=%d,%d pads=%d,%d,%d,%d include_pad=%d", qtype_name(t), s.H, s.W, s.C,
                   s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.pad_top, s.pad_left, s.pad_bottom, s.pad_right,
                   s.count_include_pad));
  }
}

// The global average (the whole H x W map per channel) against the windowed reference, on 1 to
// 3 threads: large maps are split into channel runs across threads, so C spans 1 to well past
// one run.
void global_avg_cases(Rng& rng, int cases) {
  for (int i = 0; i < cases / 8 + 8; ++i) {
    // Every fourth case is large enough (2^18 inputs or more) for the split into channel runs.
    const bool big = i % 4 == 1;
    const int batch = rng.uniform(1, 2), H = big ? rng.uniform(14, 16) : rng.uniform(1, 9), W = big ? rng.uniform(14, 16) : rng.uniform(1, 9);
    const int C = i % 4 == 0 ? rng.uniform(1, 20) : big ? rng.uniform(1200, 1400) : rng.uniform(60, 1400);
    const QType t = rng.uniform(0, 1) ? QType::U8 : QType::S8;
    const size_t xn = static_cast<size_t>(batch) * H * W * C;
    GuardedBuffer x(xn), want(static_cast<size_t>(batch) * C), got(static_cast<size_t>(batch) * C);
    for (size_t j = 0; j < xn; ++j) x.as()[j] = static_cast<uint8_t>(rng.next());
    const float xs = 0.01f + rng.unit(), ys = 0.01f + rng.unit();
    const int32_t xz = rng.uniform(qmin(t), qmax(t)), yz = rng.uniform(qmin(t), qmax(t));
    PoolShape s;
    s.batch = batch, s.H = H, s.W = W, s.C = C, s.kernel_h = H, s.kernel_w = W;
    ref::avg_pool(s, x.as(), t, xs, xz, ys, yz, want.as());
    const int threads = rng.uniform(1, 3);
    ThreadPool pool(threads);
    const size_t scratch = global_avg_pool_scratch_bytes(C, threads);
    GuardedBuffer am(scratch);
    Arena arena(am.as(), scratch);
    const bool ok = global_avg_pool(batch, H, W, C, x.as(), t, xs, xz, ys, yz, got.as(), arena, threads > 1 ? &pool : nullptr).ok();
    size_t diff = 0;
    for (size_t j = 0; ok && j < static_cast<size_t>(batch) * C; ++j) diff += want.as()[j] != got.as()[j];
    expect(ok && diff == 0, fmt("global_avg_pool %s %dx%dx%dx%d on %d threads: %zu values differ from the reference", qtype_name(t),
                                batch, H, W, C, threads, diff));
  }
}

void eltwise_cases(Rng& rng, int cases) {
  for (int i = 0; i < cases / 4 + 10; ++i) {
    EltwiseArgs e;
    e.type = rng.uniform(0, 1) ? QType::U8 : QType::S8;
    const int bc = rng.uniform(0, 2);
    e.broadcast = bc == 0 ? Broadcast::Full : bc == 1 ? Broadcast::PerChannel : Broadcast::Scalar;
    e.channels = rng.uniform(1, 17);
    // Every eighth case spans several 16384-element chunks, run on three threads: chunk edges
    // fall inside a channel row.
    const bool big = i % 8 == 7;
    e.count = e.channels * (big ? rng.uniform(1000, 3000) : rng.uniform(1, 300));
    const size_t bn = e.broadcast == Broadcast::Full ? e.count : e.broadcast == Broadcast::PerChannel ? e.channels : 1;
    GuardedBuffer a(e.count), b(bn), y(e.count), y2(e.count);
    for (size_t j = 0; j < e.count; ++j) a.as()[j] = static_cast<uint8_t>(rng.next());
    for (size_t j = 0; j < bn; ++j) b.as()[j] = static_cast<uint8_t>(rng.next());
    e.a = a.as();
    e.b = b.as();
    e.a_scale = std::ldexp(1.0f + rng.unit(), rng.uniform(-8, 0));
    e.b_scale = std::ldexp(1.0f + rng.unit(), rng.uniform(-8, 0));
    e.y_scale = std::ldexp(1.0f + rng.unit(), rng.uniform(-8, 0));
    e.a_zero_point = rng.uniform(qmin(e.type), qmax(e.type));
    e.b_zero_point = rng.uniform(qmin(e.type), qmax(e.type));
    e.y_zero_point = rng.uniform(qmin(e.type), qmax(e.type));
    if (rng.uniform(0, 2) == 0) e.clamp_min = e.y_zero_point;
    // A fused Clip's upper bound (ReLU6): somewhere above the lower one.
    if (rng.uniform(0, 2) == 0) e.clamp_max = rng.uniform(std::max(e.clamp_min, qmin(e.type)), qmax(e.type));
    e.y = y.as();
    static ThreadPool pool(3);
    ThreadPool* p = big ? &pool : nullptr;
    bool ok = qadd(e, p).ok();
    EltwiseArgs m = e;
    m.y = y2.as();
    ok = ok && qmul(m, p).ok();
    const int32_t lo = std::max(e.clamp_min, qmin(e.type)), hi = std::min(e.clamp_max, qmax(e.type));
    const float ra = e.a_scale / e.y_scale, rb = e.b_scale / e.y_scale, rm = e.a_scale * e.b_scale / e.y_scale;
    for (size_t j = 0; ok && j < e.count; ++j) {
      const size_t k = e.broadcast == Broadcast::Full ? j : e.broadcast == Broadcast::Scalar ? 0 : j % e.channels;
      const int32_t da = get(a.as(), e.type, j) - e.a_zero_point, db = get(b.as(), e.type, k) - e.b_zero_point;
      const float pa = ra * static_cast<float>(da), pb = rb * static_cast<float>(db);
      if (get(y.as(), e.type, j) != rq(pa + pb, e.y_zero_point, lo, hi)) ok = false;
      if (get(y2.as(), e.type, j) != rq(rm * static_cast<float>(da * db), e.y_zero_point, lo, hi)) ok = false;
    }
    expect(ok, fmt("qadd/qmul %s broadcast=%d count=%zu channels=%zu", qtype_name(e.type), bc, e.count, e.channels));
  }
  // qadd_rows (a GEMM tile's residual add; test_gemm checks its results) refuses what it cannot do.
  {
    uint8_t a[8] = {}, b[8] = {}, y[8] = {};
    EltwiseArgs e;
    e.a = a, e.b = b, e.y = y, e.count = 4;
    const bool good = qadd_rows(e, 2, 4).ok();
    const bool overlap = qadd_rows(e, 2, 3).ok();
    e.broadcast = Broadcast::Scalar;
    const bool scalar = qadd_rows(e, 2, 4).ok();
    e.broadcast = Broadcast::Full;
    e.y_scale = 0;
    const bool zero_scale = qadd_rows(e, 2, 4).ok();
    expect(good && !overlap && !scalar && !zero_scale, "qadd_rows takes 2 rows of 4 at stride 4 and refuses overlapping rows, a broadcast operand and a zero scale");
    // Scales each finite whose ratios are not (1e20 / 1e-20): a sum could be inf - inf.
    e.y_scale = 1e-20f;
    e.a_scale = 1e20f;
    const bool huge_a = qadd(e).ok();
    e.a_scale = 1;
    e.b_scale = 1e20f;
    const bool huge_b = qmul(e).ok();
    e.b_scale = 1;
    e.y_scale = 1e-29f;
    const bool near = qadd(e).ok() && qmul(e).ok();
    expect(!huge_a && !huge_b && near, "qadd and qmul refuse scale ratios above 1e30 and take 1e29");
  }
}

void lut_cases(Rng& rng) {
  const Activation kinds[] = {Activation::Relu, Activation::Clip, Activation::HardSigmoid, Activation::HardSwish,
                              Activation::Sigmoid, Activation::Tanh, Activation::LeakyRelu};
  for (Activation k : kinds) {
    for (QType t : {QType::U8, QType::S8}) {
      ActivationParams p{k, k == Activation::Clip ? -1.0f : k == Activation::HardSigmoid ? 0.2f : 0.01f,
                         k == Activation::Clip ? 3.0f : 0.5f};
      const float is = 0.05f, os = 0.03f;
      const int32_t iz = t == QType::U8 ? 128 : 0, oz = t == QType::U8 ? 100 : -20;
      const Lut lut = build_activation_lut(p, t, is, iz, t, os, oz);
      // 1003: the eight-byte loop and its byte tail.
      constexpr int n = 1003;
      GuardedBuffer x(n), y(n);
      for (int j = 0; j < n; ++j) x.as()[j] = static_cast<uint8_t>(rng.next());
      apply_lut(lut, x.as(), y.as(), n);
      bool ok = true;
      for (int j = 0; j < n; ++j) {
        const float xv = static_cast<float>(get(x.as(), t, j) - iz) * is;
        float f;
        switch (k) {
          case Activation::Relu: f = std::fmax(xv, 0.0f); break;
          case Activation::Clip: f = std::fmin(std::fmax(xv, -1.0f), 3.0f); break;
          case Activation::HardSigmoid: f = std::fmax(0.0f, std::fmin(1.0f, 0.2f * xv + 0.5f)); break;
          case Activation::HardSwish: f = xv * std::fmax(0.0f, std::fmin(1.0f, xv / 6.0f + 0.5f)); break;
          case Activation::Sigmoid: f = 1.0f / (1.0f + std::exp(-xv)); break;
          case Activation::Tanh: f = std::tanh(xv); break;
          default: f = xv >= 0 ? xv : 0.01f * xv; break;
        }
        float q = std::rint(f / os) + static_cast<float>(oz);
        q = std::fmin(std::fmax(q, static_cast<float>(qmin(t))), static_cast<float>(qmax(t)));
        if (get(y.as(), t, j) != static_cast<int32_t>(q)) ok = false;
      }
      expect(ok, fmt("lut activation %d %s", static_cast<int>(k), qtype_name(t)));
    }
  }
}
}  // namespace

void run_pool_eltwise_tests(Rng& rng, int cases) {
  pool_cases(rng, cases);
  global_avg_cases(rng, cases);
  eltwise_cases(rng, cases);
  lut_cases(rng);
}

}  // namespace edge::test

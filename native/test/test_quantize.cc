// QuantizeLinear / DequantizeLinear: known ONNX values (round half to even, saturation, NaN),
// then random per-tensor and per-channel tensors against the formula written out here.
#include <cmath>
#include <limits>

#include "kernels/kernels.h"
#include "test_util.h"

namespace edge::test {
using namespace edge::kernels;

void run_quantize_tests(Rng& rng, int cases) {
  struct Known { float x, scale; int32_t zp; int u8; int s8; };
  const Known known[] = {
      {2.5f, 1, 0, 2, 2},     {3.5f, 1, 0, 4, 4},     {-2.5f, 1, 0, 0, -2},  {-3.5f, 1, 10, 6, 6},
      {300, 1, 0, 255, 127},  {-300, 1, 0, 0, -128},  {0.5f, 1, 128, 128, 0}, {1.5f, 1, 0, 2, 2},
      {1e30f, 1e-30f, 0, 255, 127}, {-1e30f, 1e-5f, 3, 0, -128}, {std::numeric_limits<float>::quiet_NaN(), 1, 7, 7, 7},
      {std::numeric_limits<float>::infinity(), 1, 0, 255, 127}, {0.3f, 0.2f, 0, 2, 2},
  };
  for (const Known& k : known) {
    uint8_t u;
    int8_t s;
    const bool ok = quantize_linear(&k.x, {}, &k.scale, &k.zp, 1, QType::U8, &u).ok() &&
                    (k.zp > 127 || quantize_linear(&k.x, {}, &k.scale, &k.zp, 1, QType::S8, &s).ok());
    expect(ok && u == k.u8 && (k.zp > 127 || s == k.s8),
           fmt("quantize(%g, %g, %d): u8 %d want %d, s8 %d want %d", k.x, k.scale, k.zp, u, k.u8, s, k.s8));
  }
  for (int i = 0; i < cases / 4 + 10; ++i) {
    QuantLayout l;
    l.outer = rng.uniform(1, 3);
    l.channels = rng.uniform(1, 9);
    l.inner = rng.uniform(1, 40);
    const bool pc = rng.uniform(0, 1) == 1;
    const QType t = rng.uniform(0, 1) ? QType::U8 : QType::S8;
    std::vector<float> scales(pc ? l.channels : 1);
    std::vector<int32_t> zps(scales.size());
    for (size_t c = 0; c < scales.size(); ++c) {
      scales[c] = std::ldexp(1.0f + rng.unit(), rng.uniform(-20, 6));
      zps[c] = rng.uniform(qmin(t), qmax(t));
    }
    GuardedBuffer xb(l.count() * 4), yb(l.count()), back(l.count() * 4);
    float* x = xb.as<float>();
    for (size_t j = 0; j < l.count(); ++j) {
      const size_t c = pc ? (j / l.inner) % l.channels : 0;
      // Mix exact halfway points, in-range values and far out-of-range ones.
      const int kind = rng.uniform(0, 3);
      const float s = scales[c];
      x[j] = kind == 0 ? (rng.uniform(-300, 300) + 0.5f) * s
           : kind == 1 ? (rng.unit() * 600 - 300) * s
           : kind == 2 ? (rng.unit() - 0.5f) * 1e6f * s : rng.uniform(-3, 3) * s;
    }
    Status st = quantize_linear(x, l, scales.data(), zps.data(), static_cast<int>(scales.size()), t, yb.as());
    bool ok = st.ok();
    size_t bad = 0;
    for (size_t j = 0; ok && j < l.count(); ++j) {
      const size_t c = pc ? (j / l.inner) % l.channels : 0;
      float q = std::rint(x[j] / scales[c]) + static_cast<float>(zps[c]);
      q = std::fmin(std::fmax(q, static_cast<float>(qmin(t))), static_cast<float>(qmax(t)));
      const int32_t got = t == QType::U8 ? yb.as<uint8_t>()[j] : yb.as<int8_t>()[j];
      if (got != static_cast<int32_t>(q)) ok = false, bad = j;
    }
    expect(ok, fmt("quantize_linear %s outer=%zu channels=%zu inner=%zu pc=%d at %zu", qtype_name(t), l.outer, l.channels,
                   l.inner, pc, bad));
    st = dequantize_linear(yb.as(), t, l, scales.data(), zps.data(), static_cast<int>(scales.size()), back.as<float>());
    ok = st.ok();
    for (size_t j = 0; ok && j < l.count(); ++j) {
      const size_t c = pc ? (j / l.inner) % l.channels : 0;
      const int32_t q = t == QType::U8 ? yb.as<uint8_t>()[j] : yb.as<int8_t>()[j];
      if (back.as<float>()[j] != static_cast<float>(q - zps[c]) * scales[c]) ok = false, bad = j;
    }
    expect(ok, fmt("dequantize_linear %s channels=%zu pc=%d at %zu", qtype_name(t), l.channels, pc, bad));
  }
  // Bad parameters are refused with a reason.
  float s0 = 0, x0 = 1;
  uint8_t y0;
  expect(!quantize_linear(&x0, {}, &s0, nullptr, 1, QType::U8, &y0).ok(), "quantize_linear refuses scale 0");
}

}  // namespace edge::test

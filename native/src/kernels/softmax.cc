#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>

namespace edge::kernels {

SoftmaxTable build_softmax_table(float x_scale) {
  SoftmaxTable t;
  for (int d = 0; d < 256; ++d) t.e[d] = static_cast<float>(std::exp(-static_cast<double>(d) * x_scale));
  return t;
}

namespace {
// The same arithmetic as the slice loop in qsoftmax, for kBlock neighbouring slices at once
// (a softmax over a middle axis, as YOLOv8's DFL head has it: axis 16, inner 8400): the
// strided walks become contiguous rows, and the rounding is the add-and-subtract of 1.5 * 2^23
// (half to even, exact for the clamped 0 <= v <= 512, kernels built with -ffp-contract=off)
// instead of a libm call. Bit-identical to the slice loop.
constexpr size_t kBlock = 64;
// std::min(v, hi) by value (NaN stays NaN, as there): std::min's reference kept GCC from
// vectorizing the loops below ("control flow in loop"); this compiles to minps(hi, v).
inline float at_most(float v, float hi) { return hi < v ? hi : v; }
void softmax_block(const SoftmaxTable& table, const SoftmaxArgs& a, size_t o, size_t i0, size_t n) {
  const uint8_t* x = a.x + o * a.axis * a.inner + i0;
  uint8_t* y = a.y + o * a.axis * a.inner + i0;
  int mx[kBlock];
  double sum[kBlock];
  float inv[kBlock];
  for (size_t j = 0; j < n; ++j) { mx[j] = 0; sum[j] = 0; }
  for (size_t k = 0; k < a.axis; ++k)
    for (size_t j = 0; j < n; ++j) mx[j] = std::max<int>(mx[j], x[k * a.inner + j]);
  // The exponentials are looked up once and kept for the output pass (up to kAxisKept rows of
  // the axis: YOLO's DFL has 16), which is then plain float arithmetic the compiler vectorizes.
  constexpr size_t kAxisKept = 32;
  float e[kAxisKept][kBlock];
  const bool keep = a.axis <= kAxisKept;
  for (size_t k = 0; k < a.axis; ++k)
    for (size_t j = 0; j < n; ++j) {
      const float v = table.e[mx[j] - x[k * a.inner + j]];
      if (keep) e[k][j] = v;
      sum[j] += v;
    }
  for (size_t j = 0; j < n; ++j) inv[j] = static_cast<float>(1.0 / (sum[j] * a.y_scale));
  const float zp = static_cast<float>(a.y_zero_point);
  constexpr float kMagic = 12582912.0f;
  for (size_t k = 0; k < a.axis; ++k) {
    uint8_t* yk = y + k * a.inner;
    if (keep) {
      const float* ek = e[k];
      for (size_t j = 0; j < n; ++j) {
        const float v = at_most(ek[j] * inv[j], 512.0f);
        yk[j] = static_cast<uint8_t>(static_cast<int32_t>(at_most(((v + kMagic) - kMagic) + zp, 255.0f)));
      }
      continue;
    }
    for (size_t j = 0; j < n; ++j) {
      // v >= 0; above 512 it saturates to 255 either way.
      const float v = at_most(table.e[mx[j] - x[k * a.inner + j]] * inv[j], 512.0f);
      yk[j] = static_cast<uint8_t>(at_most(((v + kMagic) - kMagic) + zp, 255.0f));
    }
  }
}
}  // namespace

Status qsoftmax(const SoftmaxTable& table, const SoftmaxArgs& a, ThreadPool* pool) {
  if (!a.x || !a.y || a.axis == 0) return Status::Error("softmax: null tensor or empty axis");
  if (!(a.y_scale > 0) || a.y_zero_point < 0 || a.y_zero_point > 255) return Status::Error("softmax: bad output quantization");
  if (a.inner >= kBlock) {
    const size_t per = (a.inner + kBlock - 1) / kBlock, blocks = a.outer * per;
    const int tasks = static_cast<int>(std::min<size_t>(blocks, 64));
    parallel_for(pool, tasks, [&](int task, int) {
      for (size_t bl = blocks * task / tasks; bl < blocks * (task + 1) / tasks; ++bl) {
        const size_t o = bl / per, i0 = (bl % per) * kBlock;
        softmax_block(table, a, o, i0, std::min(kBlock, a.inner - i0));
      }
    });
    return Status::Ok();
  }
  const size_t slices = a.outer * a.inner;
  const int tasks = static_cast<int>(std::min<size_t>(slices, 64));
  parallel_for(pool, tasks, [&](int task, int) {
    const size_t b = slices * task / tasks, e = slices * (task + 1) / tasks;
    for (size_t s = b; s < e; ++s) {
      const size_t o = s / a.inner, i = s % a.inner;
      const uint8_t* x = a.x + o * a.axis * a.inner + i;
      uint8_t* y = a.y + o * a.axis * a.inner + i;
      int mx = 0;
      for (size_t k = 0; k < a.axis; ++k) mx = std::max<int>(mx, x[k * a.inner]);
      double sum = 0;
      for (size_t k = 0; k < a.axis; ++k) sum += table.e[mx - x[k * a.inner]];
      const float inv = static_cast<float>(1.0 / (sum * a.y_scale));
      const float zp = static_cast<float>(a.y_zero_point);
      for (size_t k = 0; k < a.axis; ++k) {
        const float v = std::min(std::nearbyint(table.e[mx - x[k * a.inner]] * inv) + zp, 255.0f);
        y[k * a.inner] = static_cast<uint8_t>(v);
      }
    }
  });
  return Status::Ok();
}

}  // namespace edge::kernels

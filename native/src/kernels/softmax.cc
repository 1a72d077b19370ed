#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>

namespace edge::kernels {

SoftmaxTable build_softmax_table(float x_scale) {
  SoftmaxTable t;
  for (int d = 0; d < 256; ++d) t.e[d] = static_cast<float>(std::exp(-static_cast<double>(d) * x_scale));
  return t;
}

Status qsoftmax(const SoftmaxTable& table, const SoftmaxArgs& a, ThreadPool* pool) {
  if (!a.x || !a.y || a.axis == 0) return Status::Error("softmax: null tensor or empty axis");
  if (!(a.y_scale > 0) || a.y_zero_point < 0 || a.y_zero_point > 255) return Status::Error("softmax: bad output quantization");
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

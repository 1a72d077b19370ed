#include "kernels/layernorm.h"

#include <algorithm>
#include <cmath>

namespace edge::kernels {

Status qlayernorm(const LayerNormArgs& a, ThreadPool* pool) {
  if (!a.x || !a.y || a.len == 0) return Status::Error("layernorm: null tensor or empty axis");
  if (!(a.y_scale > 0) || !(a.x_scale > 0) || !(a.epsilon >= 0)) return Status::Error("layernorm: bad scale or epsilon");
  const int tasks = static_cast<int>(std::min<size_t>(a.rows, 64));
  parallel_for(pool, tasks, [&](int task, int) {
    const size_t b = a.rows * task / tasks, e = a.rows * (task + 1) / tasks;
    for (size_t r = b; r < e; ++r) {
      const uint8_t* x = a.x + r * a.len;
      uint8_t* y = a.y + r * a.len;
      int64_t s1 = 0, s2 = 0;
      for (size_t k = 0; k < a.len; ++k) {
        const int64_t d = static_cast<int64_t>(x[k]) - a.x_zero_point;
        s1 += d;
        s2 += d * d;
      }
      const double n = static_cast<double>(a.len);
      const double mean = static_cast<double>(s1) / n;
      // Variance in quantized steps from exact sums: (n * s2 - s1^2) / n^2, never negative.
      const double var_q = (n * static_cast<double>(s2) - static_cast<double>(s1) * static_cast<double>(s1)) / (n * n);
      const double sc = a.x_scale;
      const double inv = sc / std::sqrt(var_q * sc * sc + a.epsilon);
      const float mean_f = static_cast<float>(mean), inv_f = static_cast<float>(inv / a.y_scale);
      const float inv_y = 1.0f / a.y_scale, zp = static_cast<float>(a.y_zero_point);
      for (size_t k = 0; k < a.len; ++k) {
        const float g = a.gamma ? a.gamma[k] : 1.0f, bt = a.beta ? a.beta[k] * inv_y : 0.0f;
        const float d = static_cast<float>(static_cast<int32_t>(x[k]) - a.x_zero_point) - mean_f;
        float v = std::nearbyint(d * inv_f * g + bt) + zp;
        v = std::min(std::max(v, 0.0f), 255.0f);
        y[k] = static_cast<uint8_t>(v);
      }
    }
  });
  return Status::Ok();
}

}  // namespace edge::kernels

#include "kernels/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace edge::kernels {

namespace {
inline uint8_t quant(float v, int32_t zp) {
  return static_cast<uint8_t>(std::min(std::max(std::nearbyint(v) + static_cast<float>(zp), 0.0f), 255.0f));
}
}  // namespace

Status qresize(const ResizeArgs& a, ThreadPool* pool) {
  if (!a.x || !a.y || !a.y0 || !a.x0) return Status::Error("resize: null tensor or index table");
  if (a.batch < 1 || a.H < 1 || a.W < 1 || a.C < 1 || a.OH < 1 || a.OW < 1) return Status::Error("resize: empty shape");
  if (a.linear && (!a.y1 || !a.x1 || !a.wy || !a.wx)) return Status::Error("resize: linear needs both neighbours and weights");
  for (int i = 0; i < a.OH; ++i) {
    if (a.y0[i] < 0 || a.y0[i] >= a.H || (a.linear && (a.y1[i] < 0 || a.y1[i] >= a.H))) return Status::Error("resize: row index out of range");
  }
  for (int i = 0; i < a.OW; ++i) {
    if (a.x0[i] < 0 || a.x0[i] >= a.W || (a.linear && (a.x1[i] < 0 || a.x1[i] >= a.W))) return Status::Error("resize: column index out of range");
  }
  const size_t C = static_cast<size_t>(a.C);
  const float mult = a.x_scale / a.y_scale;
  const bool copy = !a.linear && a.x_scale == a.y_scale && a.x_zero_point == a.y_zero_point;
  const float xzp = static_cast<float>(a.x_zero_point);
  parallel_for(pool, a.batch * a.OH, [&](int task, int) {
    const int n = task / a.OH, oy = task % a.OH;
    const uint8_t* img = a.x + static_cast<size_t>(n) * a.H * a.W * C;
    uint8_t* out = a.y + (static_cast<size_t>(n) * a.OH + oy) * a.OW * C;
    const uint8_t* r0 = img + static_cast<size_t>(a.y0[oy]) * a.W * C;
    if (!a.linear) {
      for (int ox = 0; ox < a.OW; ++ox) {
        const uint8_t* src = r0 + static_cast<size_t>(a.x0[ox]) * C;
        uint8_t* dst = out + static_cast<size_t>(ox) * C;
        if (copy) std::memcpy(dst, src, C);
        else for (size_t c = 0; c < C; ++c) dst[c] = quant((static_cast<float>(src[c]) - xzp) * mult, a.y_zero_point);
      }
      return;
    }
    const uint8_t* r1 = img + static_cast<size_t>(a.y1[oy]) * a.W * C;
    const float wy = a.wy[oy], vy = 1.0f - wy;
    for (int ox = 0; ox < a.OW; ++ox) {
      const float wx = a.wx[ox], vx = 1.0f - wx;
      const uint8_t* p00 = r0 + static_cast<size_t>(a.x0[ox]) * C;
      const uint8_t* p01 = r0 + static_cast<size_t>(a.x1[ox]) * C;
      const uint8_t* p10 = r1 + static_cast<size_t>(a.x0[ox]) * C;
      const uint8_t* p11 = r1 + static_cast<size_t>(a.x1[ox]) * C;
      uint8_t* dst = out + static_cast<size_t>(ox) * C;
      for (size_t c = 0; c < C; ++c) {
        const float top = vx * (static_cast<float>(p00[c]) - xzp) + wx * (static_cast<float>(p01[c]) - xzp);
        const float bot = vx * (static_cast<float>(p10[c]) - xzp) + wx * (static_cast<float>(p11[c]) - xzp);
        dst[c] = quant((vy * top + wy * bot) * mult, a.y_zero_point);
      }
    }
  });
  return Status::Ok();
}

}  // namespace edge::kernels

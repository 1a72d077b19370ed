#include "kernels/peak.h"

#include <chrono>

#include "kernels/variant_table.h"

namespace edge::kernels {

double peak_int8_gops(Variant v, int milliseconds) {
  const VariantKernels* vk = variant_kernels(v);
  if (vk == nullptr || vk->peak_loop == nullptr || !variant_supported(v)) return 0;
  int32_t sink[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x01010101, 0x02020202, 0, 0};
  using clock = std::chrono::steady_clock;
  vk->peak_loop(10000, sink);  // warm up (frequency, caches)
  double best = 0;
  const auto end = clock::now() + std::chrono::milliseconds(milliseconds);
  while (clock::now() < end) {
    const auto t0 = clock::now();
    const uint64_t ops = vk->peak_loop(200000, sink);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    if (ops / s > best) best = ops / s;
  }
  return best / 1e9;
}

}  // namespace edge::kernels

#include "engine/arena_plan.h"

#include <algorithm>
#include <numeric>

namespace edge::engine {

std::vector<size_t> place_tensors(const std::vector<Lifetime>& lives, size_t* total) {
  const auto align = [](size_t b) { return (b + 63) & ~size_t(63); };
  std::vector<size_t> order(lives.size()), offset(lives.size(), 0);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lives[a].bytes > lives[b].bytes; });
  std::vector<size_t> placed;
  size_t end = 0;
  for (size_t i : order) {
    const Lifetime& me = lives[i];
    // Busy intervals of already placed tensors alive at the same time, by offset.
    std::vector<std::pair<size_t, size_t>> busy;
    for (size_t j : placed) {
      const Lifetime& o = lives[j];
      if (o.first <= me.last && me.first <= o.last) busy.push_back({offset[j], offset[j] + align(o.bytes)});
    }
    std::sort(busy.begin(), busy.end());
    size_t at = 0;
    for (const auto& [lo, hi] : busy) {
      if (at + align(me.bytes) <= lo) break;
      at = std::max(at, hi);
    }
    offset[i] = at;
    end = std::max(end, at + align(me.bytes));
    placed.push_back(i);
  }
  *total = end;
  return offset;
}

}  // namespace edge::engine

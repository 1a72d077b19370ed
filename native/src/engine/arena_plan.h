#pragma once
// Places every tensor of a plan in one arena: tensors whose lifetimes (first write to last
// read, in op order) do not overlap share bytes. Greedy by size, lowest offset first, which
// is near optimal for the chain-shaped graphs of small CNNs.
#include <cstddef>
#include <vector>

namespace edge::engine {

struct Lifetime {
  size_t bytes = 0;
  int first = 0;  // op index that writes it (-1: graph input or constant)
  int last = 0;   // op index that last reads it (ops.size(): graph output or constant)
};

// Returns one 64-byte aligned offset per lifetime; *total receives the arena size.
std::vector<size_t> place_tensors(const std::vector<Lifetime>& lives, size_t* total);

}  // namespace edge::engine

#pragma once
// Run-time choice of the instruction-set variant. Every kernel family has a scalar version
// and optimised versions; one variant is active for the whole process, chosen once from the
// CPU's features (cpu_features.h) or forced by the environment variable
// EDGE_KERNELS=scalar|avx2|avx512vnni|avxvnni|neon|dotprod (tests and benchmarks; the list
// itself is EDGE_KERNEL_VARIANTS in variants.h). Every family in the per-variant table
// (variant_table.h: GEMM, depthwise, direct small-channel convolution, input quantization,
// 2x2 max pooling) follows the same choice.
// Forcing a variant the CPU lacks falls back to the best supported one and
// variant_forced_error() says why.
#include <vector>

#include "kernels/common.h"
#include "kernels/variants.h"

namespace edge::kernels {

enum class Variant : uint8_t {
#define EDGE_X(Enum, name, rank) Enum,
  EDGE_KERNEL_VARIANTS(EDGE_X)
#undef EDGE_X
  Count
};

const char* variant_name(Variant v);
// Parses a name as used by EDGE_KERNELS; returns false for an unknown name.
bool parse_variant(const char* name, Variant* out);
// Whether this build contains the variant and this CPU can run it.
bool variant_supported(Variant v);
// All variants this CPU can run, scalar first, best last.
std::vector<Variant> supported_variants();
// The best variant for this CPU, ignoring EDGE_KERNELS.
Variant best_variant();

// The variant used by calls that do not name one (EDGE_KERNELS or best_variant()).
Variant active_variant();
const char* active_variant_name();
// Switches the process-wide variant (tests, benchmarks). Not safe while kernels run on
// other threads. Packed weights keep the variant they were packed for (see gemm.h).
Status set_active_variant(Variant v);
// Non-null when EDGE_KERNELS named a variant that could not be used.
const char* variant_forced_error();

}  // namespace edge::kernels

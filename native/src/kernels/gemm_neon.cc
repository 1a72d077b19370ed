// Placeholder until the neon kernels land: not built in.
#include "kernels/variant_table.h"
namespace edge::kernels {
const VariantKernels* neon_kernels() { return nullptr; }
}  // namespace edge::kernels

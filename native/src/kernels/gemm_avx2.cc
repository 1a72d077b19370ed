// Placeholder until the avx2 kernels land: not built in.
#include "kernels/variant_table.h"
namespace edge::kernels {
const VariantKernels* avx2_kernels() { return nullptr; }
}  // namespace edge::kernels

// Placeholder until the dotprod kernels land: not built in.
#include "kernels/variant_table.h"
namespace edge::kernels {
const VariantKernels* dotprod_kernels() { return nullptr; }
}  // namespace edge::kernels

// Placeholder until the avxvnni kernels land: not built in.
#include "kernels/variant_table.h"
namespace edge::kernels {
const VariantKernels* avxvnni_kernels() { return nullptr; }
}  // namespace edge::kernels

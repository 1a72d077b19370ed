// Placeholder until the avx512vnni kernels land: not built in.
#include "kernels/variant_table.h"
namespace edge::kernels {
const VariantKernels* avx512vnni_kernels() { return nullptr; }
}  // namespace edge::kernels

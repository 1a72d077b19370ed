// qadd / qmul loops (eltwise_span.h) compiled with AVX2: 8 float lanes where the baseline x86-64
// build has 4 (SSE2) and widens bytes with unpack sequences. Used by every x86 variant's table.
#include "kernels/variant_table.h"

#if defined(__AVX2__)
#include "kernels/eltwise_span.h"

namespace edge::kernels {
void eltwise_avx2(const EltwiseArgs& e, size_t begin, size_t end, bool mul) { eltwise_range(e, begin, end, mul); }
}  // namespace edge::kernels
#endif

#pragma once
// The machine's peak int8 rate for a variant, measured by a loop of the micro-kernel's own
// multiply-accumulate instruction in independent chains (no memory traffic). The benchmark
// reports its kernels as a fraction of this.
#include "kernels/dispatch.h"

namespace edge::kernels {
// Giga int8 operations per second (2 per multiply-accumulate) on one thread, measured for
// about `milliseconds`; 0 for the scalar variant or an unsupported one.
double peak_int8_gops(Variant v, int milliseconds = 200);
}  // namespace edge::kernels

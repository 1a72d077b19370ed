#pragma once
// The int8 kernel library, everything in one include. See native/README.md for the design.
#include "kernels/common.h"
#include "kernels/conv.h"
#include "kernels/conv_direct.h"
#include "kernels/cpu_features.h"
#include "kernels/dispatch.h"
#include "kernels/eltwise.h"
#include "kernels/gemm.h"
#include "kernels/lut.h"
#include "kernels/peak.h"
#include "kernels/pool.h"
#include "kernels/quantize.h"
#include "kernels/thread_pool.h"

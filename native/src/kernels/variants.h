#pragma once
// The kernel variants, written once. Everything that lists variants (the Variant enum, the
// names EDGE_KERNELS accepts, the CPU feature flags and cpu_features_string(), the per-variant
// tables in variant_table.h and their lookup in dispatch.cc, the preference order) expands
// this X-macro, so adding a variant is one line here plus its gemm_<name>.cc table.
//
//   X(Enum, name, rank)
//     Enum  the Variant enumerator;
//     name  what EDGE_KERNELS and kernelsInfo() call it; also the CpuFeatures flag and the
//           <name>_kernels() table accessor;
//     rank  preference when several are supported (higher wins; x86 and ARM never mix).
// The enumerator order is the order of cpu_features_string() and of the values themselves.
#define EDGE_KERNEL_VARIANTS(X) \
  X(Scalar, scalar, 0)          \
  X(Avx2, avx2, 3)              \
  X(Avx512Vnni, avx512vnni, 5)  \
  X(AvxVnni, avxvnni, 4)        \
  X(Neon, neon, 1)              \
  X(Dotprod, dotprod, 2)

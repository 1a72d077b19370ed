#include "kernels/dispatch.h"

#include <cstdlib>
#include <cstring>

#include "kernels/cpu_features.h"
#include "kernels/variant_table.h"

namespace edge::kernels {
namespace {

const char* const kNames[] = {"scalar", "avx2", "avx512vnni", "avxvnni", "neon", "dotprod"};

bool cpu_has(Variant v) {
  const CpuFeatures& f = cpu_features();
  switch (v) {
    case Variant::Scalar: return true;
    case Variant::Avx2: return f.avx2;
    case Variant::Avx512Vnni: return f.avx512_vnni;
    case Variant::AvxVnni: return f.avx_vnni;
    case Variant::Neon: return f.neon;
    case Variant::Dotprod: return f.dotprod;
    default: return false;
  }
}

const char* g_forced_error = nullptr;

Variant initial_variant() {
  const char* env = std::getenv("EDGE_KERNELS");
  if (env != nullptr && *env != '\0') {
    Variant v;
    if (!parse_variant(env, &v)) {
      g_forced_error = "EDGE_KERNELS names no known variant (expected scalar, avx2, avx512vnni, avxvnni, neon or dotprod)";
    } else if (!variant_supported(v)) {
      g_forced_error = "EDGE_KERNELS names a variant this CPU or build cannot run; using the best supported one";
    } else {
      return v;
    }
  }
  return best_variant();
}

Variant& active_ref() {
  static Variant v = initial_variant();
  return v;
}

}  // namespace

const char* variant_name(Variant v) {
  auto i = static_cast<size_t>(v);
  return i < sizeof(kNames) / sizeof(kNames[0]) ? kNames[i] : "unknown";
}

bool parse_variant(const char* name, Variant* out) {
  for (size_t i = 0; i < sizeof(kNames) / sizeof(kNames[0]); ++i) {
    if (std::strcmp(name, kNames[i]) == 0) {
      *out = static_cast<Variant>(i);
      return true;
    }
  }
  return false;
}

const VariantKernels* variant_kernels(Variant v) {
  switch (v) {
    case Variant::Scalar: return scalar_kernels();
    case Variant::Avx2: return avx2_kernels();
    case Variant::Avx512Vnni: return avx512vnni_kernels();
    case Variant::AvxVnni: return avxvnni_kernels();
    case Variant::Neon: return neon_kernels();
    case Variant::Dotprod: return dotprod_kernels();
    default: return nullptr;
  }
}

bool variant_supported(Variant v) { return cpu_has(v) && variant_kernels(v) != nullptr; }

std::vector<Variant> supported_variants() {
  std::vector<Variant> out;
  // Order: scalar, then by increasing capability.
  for (Variant v : {Variant::Scalar, Variant::Neon, Variant::Dotprod, Variant::Avx2, Variant::AvxVnni, Variant::Avx512Vnni}) {
    if (variant_supported(v)) out.push_back(v);
  }
  return out;
}

Variant best_variant() { return supported_variants().back(); }

Variant active_variant() { return active_ref(); }
const char* active_variant_name() { return variant_name(active_variant()); }

Status set_active_variant(Variant v) {
  if (!variant_supported(v)) return Status::Error("this CPU or build cannot run the requested kernel variant");
  active_ref() = v;
  return Status::Ok();
}

const char* variant_forced_error() {
  (void)active_ref();
  return g_forced_error;
}

const VariantKernels& active_kernels() { return *variant_kernels(active_variant()); }

}  // namespace edge::kernels

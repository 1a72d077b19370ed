#include "kernels/dispatch.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu_features.h"
#include "kernels/variant_table.h"

namespace edge::kernels {
namespace {

#define EDGE_X(Enum, name, rank) #name,
const char* const kNames[] = {EDGE_KERNEL_VARIANTS(EDGE_X)};
#undef EDGE_X
#define EDGE_X(Enum, name, rank) rank,
const int kRanks[] = {EDGE_KERNEL_VARIANTS(EDGE_X)};
#undef EDGE_X
constexpr size_t kCount = static_cast<size_t>(Variant::Count);
static_assert(sizeof(kNames) / sizeof(kNames[0]) == kCount, "one name per variant");

bool cpu_has(Variant v) {
  const CpuFeatures& f = cpu_features();
  switch (v) {
#define EDGE_X(Enum, name, rank) \
  case Variant::Enum: return f.name;
    EDGE_KERNEL_VARIANTS(EDGE_X)
#undef EDGE_X
    default: return false;
  }
}

#define EDGE_X(Enum, name, rank) " " #name
const char kUnknownName[] = "EDGE_KERNELS names no known variant (expected one of:" EDGE_KERNEL_VARIANTS(EDGE_X) ")";
#undef EDGE_X

const char* g_forced_error = nullptr;

Variant initial_variant() {
  const char* env = std::getenv("EDGE_KERNELS");
  if (env != nullptr && *env != '\0') {
    Variant v;
    if (!parse_variant(env, &v)) {
      g_forced_error = kUnknownName;
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
  return i < kCount ? kNames[i] : "unknown";
}

bool parse_variant(const char* name, Variant* out) {
  for (size_t i = 0; i < kCount; ++i) {
    if (std::strcmp(name, kNames[i]) == 0) {
      *out = static_cast<Variant>(i);
      return true;
    }
  }
  return false;
}

const VariantKernels* variant_kernels(Variant v) {
  switch (v) {
#define EDGE_X(Enum, name, rank) \
  case Variant::Enum: return name##_kernels();
    EDGE_KERNEL_VARIANTS(EDGE_X)
#undef EDGE_X
    default: return nullptr;
  }
}

bool variant_supported(Variant v) { return cpu_has(v) && variant_kernels(v) != nullptr; }

std::vector<Variant> supported_variants() {
  std::vector<Variant> out;
  // Order: scalar, then by increasing capability (the rank column of variants.h).
  for (size_t i = 0; i < kCount; ++i) {
    if (variant_supported(static_cast<Variant>(i))) out.push_back(static_cast<Variant>(i));
  }
  std::sort(out.begin(), out.end(), [](Variant a, Variant b) { return kRanks[static_cast<size_t>(a)] < kRanks[static_cast<size_t>(b)]; });
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

// Standalone differential tests of the int8 kernels: every variant this CPU supports against
// the scalar reference. Usage: kernel_tests [--seed N] [--cases N] [--variant NAME]
// (env: EDGE_TEST_SEED, EDGE_TEST_CASES). Exit status 0 only if every case passed.
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "kernels/kernels.h"
#include "test_util.h"

namespace edge::test {

Counters& counters() {
  static Counters c;
  return c;
}

bool expect(bool ok, const std::string& what) {
  Counters& c = counters();
  ++c.cases;
  if (!ok) {
    ++c.failures;
    if (c.failures <= 20) std::printf("FAIL %s\n", what.c_str());
  }
  return ok;
}

std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// Suites (one file each).
void run_quantize_tests(Rng& rng, int cases);
void run_gemm_tests(Rng& rng, int cases);
void run_conv_tests(Rng& rng, int cases);
void run_pool_eltwise_tests(Rng& rng, int cases);
void run_small_shape_tests(Rng& rng, int cases);
void run_api_tests(Rng& rng);
void run_float_inside_tests(Rng& rng, int cases);
void run_deconv_tests(Rng& rng, int cases);
void run_copy_tests(Rng& rng, int cases);

}  // namespace edge::test

int main(int argc, char** argv) {
  using namespace edge::test;
  using namespace edge::kernels;
  uint64_t seed = static_cast<uint64_t>(std::time(nullptr));
  int cases = 300;
  const char* only = nullptr;
  if (const char* s = std::getenv("EDGE_TEST_SEED")) seed = std::strtoull(s, nullptr, 10);
  if (const char* s = std::getenv("EDGE_TEST_CASES")) cases = std::atoi(s);
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seed")) seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--cases")) cases = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--variant")) only = argv[i + 1];
  }
  std::printf("kernel_tests: seed=%llu cases=%d cpu=%s\n", static_cast<unsigned long long>(seed), cases,
              cpu_features_string().c_str());
  std::vector<Variant> variants = supported_variants();
  if (only) {
    Variant v;
    if (!parse_variant(only, &v) || !variant_supported(v)) {
      std::printf("FAIL variant %s is not supported here\n", only);
      return 2;
    }
    variants = {v};
  }
  for (Variant v : variants) {
    (void)set_active_variant(v);
    const long before_cases = counters().cases, before_fail = counters().failures;
    Rng rng(seed);  // the same cases for every variant
    run_quantize_tests(rng, cases);
    run_gemm_tests(rng, cases);
    run_conv_tests(rng, cases);
    run_pool_eltwise_tests(rng, cases);
    run_small_shape_tests(rng, cases);
    run_api_tests(rng);
    run_float_inside_tests(rng, cases);
    run_deconv_tests(rng, cases);
    run_copy_tests(rng, cases);
    std::printf("variant %-10s cases=%ld failures=%ld\n", variant_name(v), counters().cases - before_cases,
                counters().failures - before_fail);
  }
  std::printf("%s: %ld cases, %ld failures, variants:", counters().failures ? "FAILED" : "PASSED", counters().cases,
              counters().failures);
  for (Variant v : variants) std::printf(" %s", variant_name(v));
  std::printf(" (seed=%llu)\n", static_cast<unsigned long long>(seed));
  return counters().failures ? 1 : 0;
}

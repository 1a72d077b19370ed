#!/usr/bin/env bash
# Builds the int8 kernels and their standalone differential test executable with
# AddressSanitizer + UndefinedBehaviorSanitizer (CMake option EDGE_SANITIZE) and runs it.
# Any sanitizer report aborts the run (-fno-sanitize-recover=all, halt_on_error), so exit
# status 0 means: every kernel variant this CPU supports matched the scalar reference, with
# no out-of-bounds access, use-after-free, leak, misaligned load, signed overflow or other UB.
# Usage: scripts/sanitize.sh [kernel_tests args...]   (default: --cases 120, a fixed seed)
# Env: BUILD_DIR (default build/sanitize), EDGE_TEST_SEED, JOBS.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build/sanitize}"
jobs="${JOBS:-2}"

command -v cmake >/dev/null || { echo "sanitize: cmake is not installed" >&2; exit 2; }
cmake -S "$root/native" -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEDGE_BUILD_ADDON=OFF \
  -DEDGE_SANITIZE=ON >/dev/null
cmake --build "$build" --target kernel_tests -j "$jobs"

exe="$build/kernel_tests"
[ -x "$exe" ] || { echo "sanitize: $exe was not built (are there tests in native/test?)" >&2; exit 2; }

# Leak detection needs ptrace, which some containers forbid; LSan then aborts with a clear
# message of its own, so it stays on unless the caller turns it off.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export EDGE_TEST_SEED="${EDGE_TEST_SEED:-20261128}"

if [ $# -eq 0 ]; then set -- --cases 120; fi
echo "sanitize: running $exe $* (ASan+UBSan, seed $EDGE_TEST_SEED)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
"$exe" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$log"; then
  echo "sanitize: FAILED: a sanitizer reported a problem (above)" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "sanitize: FAILED: kernel_tests exited with status $status" >&2
  exit "$status"
fi
echo "sanitize: clean (ASan+UBSan): kernel differential tests passed"

#!/usr/bin/env bash
# Builds the int8 kernels and their standalone differential test executable with
# AddressSanitizer + UndefinedBehaviorSanitizer (CMake option EDGE_SANITIZE) and runs it.
# Any sanitizer report aborts the run (-fno-sanitize-recover=all, halt_on_error), so exit
# status 0 means: every kernel variant this CPU supports matched the scalar reference, with
# no out-of-bounds access, use-after-free, leak, misaligned load, signed overflow or other UB.
# Then the same for the Node-API addon: built with the sanitizers (build/sanitize-addon) and
# loaded into Node with the sanitizer runtimes preloaded, it runs the TypeScript-side
# differential tests (kernels against ONNX Runtime, the native engine against ORT, the kernel
# API, the 16-bit activation steps). SANITIZE_ADDON=0 skips this phase (it builds the whole addon: minutes).
# Usage: scripts/sanitize.sh [kernel_tests args...]   (default: --cases 120, a fixed seed)
# Env: BUILD_DIR (default build/sanitize), EDGE_TEST_SEED, JOBS, SANITIZE_ADDON.
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

[ "${SANITIZE_ADDON:-1}" = "0" ] && exit 0
addon_build="$root/build/sanitize-addon"
(cd "$root" && npx cmake-js compile -d native -O "$addon_build" --CDEDGE_SANITIZE=ON >/dev/null)
addon="$addon_build/Release/edge_native.node"
[ -f "$addon" ] || { echo "sanitize: $addon was not built" >&2; exit 2; }
cxx="${CXX:-c++}"
# ASan must be the first runtime in the process: preload it (and UBSan) into node.
preload="$("$cxx" -print-file-name=libasan.so):$("$cxx" -print-file-name=libubsan.so)"
failed=0
for f in kernels-api kernels-ort engine-parity engine-copy engine-a16; do
  file="$root/test/$f.test.ts"
  [ -f "$file" ] || continue
  echo "sanitize: addon under ASan+UBSan: test/$f.test.ts"
  set +e
  (cd "$root" && LD_PRELOAD="$preload" ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1" \
    EDGE_NATIVE_ADDON="$addon" node --import tsx "$file") > "$log" 2>&1
  status=$?
  set -e
  grep -E "^# \{" "$log" | tail -1
  # (Node itself is not instrumented and leaks by design at exit: leak checks stay off here.)
  if grep -qE "ERROR: AddressSanitizer|runtime error:" "$log" || [ "$status" -ne 0 ]; then
    cat "$log"
    echo "sanitize: FAILED: test/$f.test.ts under the sanitized addon (status $status)" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] || exit 1
echo "sanitize: clean (ASan+UBSan): the addon's differential tests passed"

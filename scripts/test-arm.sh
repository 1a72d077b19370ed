#!/usr/bin/env bash
# Cross-compiles the kernel library and its standalone differential tests for aarch64 and
# runs them under qemu twice: as a Cortex-A72 (Raspberry Pi 4: NEON, no dot product) and as
# `-cpu max` (dot product), so both the NEON and the SDOT/UDOT kernels pass the same tests.
# Needs Debian's g++-aarch64-linux-gnu and qemu-user. Extra arguments go to kernel_tests
# (e.g. --seed 42); EDGE_TEST_CASES raises the random case count. Then the whole agent from the
# arm64 release file under qemu as both CPUs (test/arm64-system.arm.ts; needs proot too).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build/kernel-tests-aarch64"
for tool in aarch64-linux-gnu-g++ qemu-aarch64 cmake; do
  command -v "$tool" >/dev/null || { echo "test-arm: $tool is missing (apt-get install g++-aarch64-linux-gnu qemu-user cmake)" >&2; exit 2; }
done
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$root/native" -B "$build" "${generator[@]}" -DEDGE_BUILD_ADDON=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ >/dev/null
cmake --build "$build" --target kernel_tests -j2
seed="${EDGE_TEST_SEED:-$(date +%s)}"
status=0
for cpu in cortex-a72 max; do
  echo "== qemu-aarch64 -cpu $cpu"
  started=$SECONDS
  out="$(EDGE_TEST_SEED="$seed" qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$cpu" "$build/kernel_tests" "$@" 2>&1)" || status=1
  echo "$out" | grep -v '^ok ' || true
  echo "(-cpu $cpu took $((SECONDS - started)) s)"
  case "$cpu" in
    cortex-a72) want="neon"; refuse="dotprod" ;;
    max) want="dotprod"; refuse="" ;;
  esac
  variants="$(echo "$out" | grep -E '^(PASSED|FAILED):' | sed 's/.*variants://; s/(seed.*//')"
  for v in neon $want; do
    echo " $variants " | grep -q " $v " || { echo "test-arm: -cpu $cpu did not run the $v kernels" >&2; status=1; }
  done
  if [ -n "$refuse" ] && echo " $variants " | grep -q " $refuse "; then
    echo "test-arm: -cpu $cpu claims $refuse, which a Cortex-A72 lacks" >&2; status=1
  fi
done

# The whole agent on arm64: the release file's daemon under qemu as both CPUs
# (test/arm64-system.arm.ts; the release is built first when it is missing).
version="$(node -p "require('$root/package.json').version")"
if [ ! -f "$root/build/release/edge-agent-$version-linux-arm64.tar.gz" ]; then
  bash "$root/scripts/release.sh" --arch arm64 || status=1
fi
echo "== the arm64 release under qemu-aarch64 (test/arm64-system.arm.ts)"
(cd "$root" && npx tap test/arm64-system.arm.ts) || status=1
exit $status

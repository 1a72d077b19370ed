#!/usr/bin/env bash
# The native engine's own loops (native/src/engine/direct.cc: direct convolution, 2x2 max pool)
# against the kernel library's scalar oracles: natively, then cross-compiled for AArch64 under
# qemu as a Cortex-A72 (Raspberry Pi 4: NEON) and as "max" (dot product), and with the scalar
# variant forced. Exits non-zero on any mismatch.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
status=0
host="$root/build/engine-tests-host"
cmake -S "$root/native" -B "$host" -G Ninja -DEDGE_BUILD_ADDON=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$host" --target engine_tests -j2 >/dev/null
echo "== host"; "$host/engine_tests" | tail -2 || status=1
echo "== host, EDGE_KERNELS=scalar"; EDGE_KERNELS=scalar "$host/engine_tests" | tail -2 || status=1
arm="$root/build/engine-tests-aarch64"
cmake -S "$root/native" -B "$arm" -G Ninja -DEDGE_BUILD_ADDON=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ >/dev/null
cmake --build "$arm" --target engine_tests -j2 >/dev/null 2>&1
for cpu in cortex-a72 max; do
  echo "== qemu-aarch64 -cpu $cpu"
  qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$cpu" "$arm/engine_tests" | tail -2 || status=1
done
exit $status

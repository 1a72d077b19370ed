#!/usr/bin/env bash
# Runs the engine, kernel and compression tests once more with each kernel variant this CPU can
# run, other than the one it picks by itself, forced through EDGE_KERNELS: `scalar` stands in
# for a CPU without AVX2 or NEON (an Atom gateway), `avx2` on a VNNI machine for a CPU without
# VNNI (AMD Zen 1-3, Intel before Ice Lake). Prints which variants were covered.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
info() { node -e 'const a = require(process.argv[1]); const i = a.kernelsInfo(); if (i.forcedError) { console.error(i.forcedError); process.exit(1); } console.log(process.argv[2] === "supported" ? i.supported.join(" ") : i.variant)' "$root/build/native/Release/edge_native.node" "$1"; }
best="$(info variant)"
supported="$(info supported)"
files=(test/engine-*.test.ts test/kernels-*.test.ts test/compress-*.test.ts test/runtime-ort-int8.test.ts)
covered=("$best (picked by the CPU: the main run)")
for v in $supported; do
  [ "$v" = "$best" ] && continue
  # The variant must really be in effect, not silently replaced by the best one.
  got="$(EDGE_KERNELS="$v" info variant)"
  [ "$got" = "$v" ] || { echo "test-variants: EDGE_KERNELS=$v gave $got" >&2; exit 1; }
  echo "test-variants: EDGE_KERNELS=$v"
  EDGE_KERNELS="$v" npx tap "${files[@]}"
  covered+=("$v (forced)")
done
echo "test-variants: CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs); kernel variants covered: $(IFS=,; echo "${covered[*]}" | sed 's/,/, /g')"

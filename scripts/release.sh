#!/usr/bin/env bash
# Builds one self-contained release file for a CPU architecture, on an x86-64 build machine:
#   npm run release -- --arch arm64|x64 [--key release.key] [--if-missing]   (default: this machine's)
# -> build/release/edge-agent-VERSION-linux-ARCH.tar.gz (the installer's release file), and with
#    --key (or RELEASE_KEY=file) also edge-agent-VERSION-linux-ARCH.release.tar.gz, the same folder
#    signed by `edge-agent release pack` for `edge-agent update install` and the fleet
#    (docs/self-update.md); without a key (CI) nothing is signed. The file holds
#   dist/                      the compiled agent, controller and tools
#   build/native/Release/      the native addon, compiled for ARCH
#   node_modules/              production dependencies, every native part built for ARCH
#                              (better-sqlite3 from source against ARCH's Node headers;
#                              onnxruntime-node's and msgpackr-extract's prebuilt ARCH binaries)
#   node/bin/node              the Node.js runtime for ARCH (npm package node-linux-ARCH)
#   deploy/                    install.sh, the systemd unit, configs
#   models/                    the sample models
# Installing it (deploy/install.sh in the unpacked folder) needs no compiler and no network.
# Needs: the project's own `npm ci` (tsc, node-addon-api), cmake, g++ (x64) or
# g++-aarch64-linux-gnu (arm64), python3, and the npm registry (for node-linux-ARCH and the
# production packages). NODE_VERSION overrides the bundled Node.js version.
# Builds of one architecture take turns (a lock in build/release): they share its work folder.
# --if-missing builds only when the release file is not there once the lock is held (tests that
# need the file and may start at once).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch=unknown ;; esac
key=${RELEASE_KEY:-}
if_missing=0
while [ $# -gt 0 ]; do
  case "$1" in
    --if-missing) if_missing=1; shift ;;
    --arch) arch=$2; shift 2 ;;
    --arch=*) arch=${1#--arch=}; shift ;;
    --key) key=$2; shift 2 ;;
    --key=*) key=${1#--key=}; shift ;;
    *) echo "release: unknown option $1 (expected --arch arm64|x64, --key FILE, --if-missing)" >&2; exit 2 ;;
  esac
done
case "$arch" in
  arm64) triple=aarch64-linux-gnu; cc=aarch64-linux-gnu-gcc; cxx=aarch64-linux-gnu-g++; elf='ARM aarch64'; cmake_cross=(-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64) ;;
  x64) triple=x86_64-linux-gnu; cc=gcc; cxx=g++; elf='x86-64'; cmake_cross=() ;;
  *) echo "release: --arch must be arm64 or x64 (32-bit ARM has no onnxruntime-node build: see docs/install.md)" >&2; exit 2 ;;
esac
for tool in "$cxx" "$cc" cmake python3 file; do
  command -v "$tool" >/dev/null || { echo "release: $tool is missing (apt-get install cmake python3 file g++$([ "$arch" = arm64 ] && echo -aarch64-linux-gnu))" >&2; exit 2; }
done
[ -d node_modules/typescript ] && [ -d node_modules/node-addon-api ] || { echo "release: run npm ci in the project first (tsc and node-addon-api come from it)" >&2; exit 2; }

version=$(node -p 'require("./package.json").version')
node_version=${NODE_VERSION:-20.20.2}
name="edge-agent-$version-linux-$arch"
out="$root/build/release"
work="$out/work-$arch"
stage="$work/$name"
cache="$out/cache"
started=$SECONDS
step() { echo "release [$arch] $(( SECONDS - started ))s: $*"; }
mkdir -p "$out"
exec 9>"$out/.release-$arch.lock"
flock 9
if [ "$if_missing" = 1 ] && [ -f "$out/$name.tar.gz" ]; then
  echo "release: $out/$name.tar.gz is there (--if-missing)"
  exit 0
fi
rm -rf "$work" && mkdir -p "$stage" "$cache"

# 1. The Node.js runtime (and its headers, for compiling against it).
pkg="$cache/node-linux-$arch-$node_version.tgz"
if [ ! -f "$pkg" ]; then
  step "npm pack node-linux-$arch@$node_version"
  (cd "$cache" && npm pack --silent "node-linux-$arch@$node_version" >/dev/null)
fi
mkdir -p "$work/nodepkg"
tar -C "$work/nodepkg" -xzf "$pkg"
nodedir="$work/nodepkg/package"
[ -x "$nodedir/bin/node" ] && [ -f "$nodedir/include/node/node_api.h" ] || { echo "release: $pkg has no bin/node or include/node" >&2; exit 1; }
rm -rf "$out/node-headers-$arch" && cp -r "$nodedir/include/node" "$out/node-headers-$arch"
mkdir -p "$stage/node/bin"
cp "$nodedir/bin/node" "$stage/node/bin/node"
cp "$nodedir/LICENSE" "$stage/node/LICENSE"

# 2. The compiled TypeScript (architecture-independent).
step "tsc"
npm run -s build:ts >/dev/null
cp -r dist "$stage/dist"
rm -rf "$stage/dist/test" "$stage/dist/scripts"
find "$stage/dist" -name '*.map' -delete

# 3. The native addon, compiled for ARCH against that Node's headers.
step "native addon ($cxx)"
addon_api=$(node -p 'require("node-addon-api").include_dir')
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# (Its build folder is kept between runs: cmake rebuilds only what changed.)
native_build="$out/native-$arch"
cmake -S native -B "$native_build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "${cmake_cross[@]}" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_JS_INC="$out/node-headers-$arch;$root/$addon_api" \
  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$native_build/Release" >/dev/null
cmake --build "$native_build" --target edge_native -j2 >/dev/null
mkdir -p "$stage/build/native/Release"
cp "$native_build/Release/edge_native.node" "$stage/build/native/Release/"

# 4. Production node_modules for ARCH: the locked versions, no install scripts (nothing is
#    downloaded or built by a package's own script), then better-sqlite3 compiled with
#    node-gyp against ARCH's headers. npm's nodedir on a build machine may be /usr (the host's
#    headers): npm_config_nodedir is set explicitly.
step "npm ci --omit=dev --cpu=$arch"
cp package.json package-lock.json .npmrc "$stage/"
(cd "$stage" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --os=linux --cpu="$arch" --libc=glibc --loglevel=error >/dev/null)
bs="$stage/node_modules/better-sqlite3"
bs_version=$(node -p "require('$bs/package.json').version")
# Kept between runs, per better-sqlite3 version, Node.js version and architecture.
bs_cached="$cache/better_sqlite3-$bs_version-node$node_version-$arch.node"
host_bs="$root/node_modules/better-sqlite3/build/Release/better_sqlite3.node"
if [ ! -f "$bs_cached" ] && [ "$arch" = "$(node -p process.arch)" ] && [ "$(node --version)" = "v$node_version" ] &&
   [ -f "$host_bs" ] && [ "$(node -p 'require("./node_modules/better-sqlite3/package.json").version')" = "$bs_version" ]; then
  # The project's own npm ci built this very version for this architecture and Node.js version.
  step "better-sqlite3 $bs_version: the one the project's npm ci built for $arch and Node.js $node_version"
  cp "$host_bs" "$bs_cached"
fi
if [ -f "$bs_cached" ]; then
  step "better-sqlite3 $bs_version (built before: $bs_cached)"
  rm -rf "$bs/build" && mkdir -p "$bs/build/Release" && cp "$bs_cached" "$bs/build/Release/better_sqlite3.node"
else
step "better-sqlite3 $bs_version (node-gyp, $cc)"
node_gyp="$(dirname "$(dirname "$(command -v npm)")")/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$node_gyp" ] || node_gyp="$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
(cd "$stage/node_modules/better-sqlite3" &&
  CC="$cc" CXX="$cxx" LINK="$cxx" AR="${triple}-ar" npm_config_nodedir="$nodedir" npm_config_arch="$arch" \
    node "$node_gyp" rebuild --release --arch="$arch" --nodedir="$nodedir" -j 2 >"$work/better-sqlite3.log" 2>&1) ||
  { tail -30 "$work/better-sqlite3.log" >&2; exit 1; }
cp "$bs/build/Release/better_sqlite3.node" "$bs_cached"
fi
# Keep only the built module of better-sqlite3 (its sources and objects are 10+ MB).
find "$bs/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find "$bs/build/Release" -mindepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
rm -rf "$bs/deps" "$bs/src"

# 5. Prune what cannot run on linux-ARCH or is not needed at run time.
step "prune"
ort="$stage/node_modules/onnxruntime-node/bin/napi-v6"
for d in "$ort"/*/*; do
  [ "$d" = "$ort/linux/$arch" ] || rm -rf "$d"
done
find "$ort" -mindepth 1 -maxdepth 1 -type d ! -name linux -exec rm -rf {} +
rm -rf "$stage/node_modules/onnxruntime-node/script" "$stage/node_modules/cmake-js" "$stage/node_modules/node-addon-api"
# The target is glibc (Debian, Raspberry Pi OS, Ubuntu, JetPack): msgpackr-extract's musl builds go.
find "$stage/node_modules/@msgpackr-extract" -name '*.musl.node' -delete 2>/dev/null || true
find "$stage/node_modules" \( -name '*.md' -o -name '*.markdown' -o -name '*.ts' -o -name '*.map' -o -name '*.cc' -o -name '*.cpp' -o -name '*.c' -o -name '*.h' -o -name '*.hpp' -o -name '*.gyp' -o -name '*.gypi' -o -name 'CHANGELOG*' -o -name '.github' \) \
  ! -name '*.d.ts' -prune -exec rm -rf {} + 2>/dev/null || true
find "$stage/node_modules" -name '*.d.ts' -delete
find "$stage/node_modules" -depth -type d -empty -delete
# No symbolic links: node_modules/.bin (nothing runs them at run time) goes, and the signed
# release format (edge-agent release pack, docs/self-update.md) refuses any other.
rm -rf "$stage/node_modules/.bin"
find "$stage/node_modules" -name .bin -type d -prune -exec rm -rf {} +
links=$(find "$stage" -type l | head -3)
[ -z "$links" ] || { echo "release: symbolic links in the release (the self-updater refuses them): $links" >&2; exit 1; }

# 6. The rest: deploy files, the sample models, docs, the license.
cp -r deploy models bin "$stage/"
mkdir -p "$stage/docs" && cp docs/install.md "$stage/docs/"
cp README.md "$stage/"
[ -f LICENSE ] && cp LICENSE "$stage/"
printf '{"name":"edge-agent","version":"%s","arch":"%s","node":"%s","built":"%s"}\n' "$version" "$arch" "$node_version" "$(date -u +%FT%TZ)" > "$stage/RELEASE.json"

# 7. Every ELF file is for ARCH, and nothing else slipped in.
step "check ELF files"
bad=0 count=0
elves=$(node -e '
  const fs = require("fs"), path = require("path");
  const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.isFile()) { const fd = fs.openSync(p, "r"), b = Buffer.alloc(4); fs.readSync(fd, b, 0, 4, 0); fs.closeSync(fd); if (b.toString("latin1") === "\x7fELF") console.log(p); }
  } };
  walk(process.argv[1]);' "$stage")
while IFS= read -r f; do
  [ -n "$f" ] || continue
  count=$((count + 1))
  desc=$(file -b "$f")
  echo "  ${f#"$stage"/}: $desc"
  case "$desc" in *"$elf"*) ;; *) echo "release: $f is not $elf" >&2; bad=1 ;; esac
done <<< "$elves"
[ "$bad" = 0 ] || exit 1
[ "$count" -ge 5 ] || { echo "release: only $count ELF files (expected node, the addon, better-sqlite3, onnxruntime)" >&2; exit 1; }

step "tar"
tarball="$out/$name.tar.gz"
tar -C "$work" --owner=0 --group=0 --numeric-owner -czf "$tarball.tmp" "$name"
mv "$tarball.tmp" "$tarball"
unpacked=$(du -sb "$stage" | cut -f1)
if [ -n "$key" ]; then
  [ -r "$key" ] || { echo "release: cannot read the signing key $key" >&2; exit 2; }
  step "sign (edge-agent release pack)"
  signed="$out/$name.release.tar.gz"
  node dist/agent/cli.js release pack --dir "$stage" --key "$key" --out "$signed.tmp" >/dev/null
  mv "$signed.tmp" "$signed"
  echo "release: $signed (signed self-update release)"
fi
echo "release: $tarball $(stat -c %s "$tarball") bytes, $unpacked bytes unpacked, $count ELF files, $(( SECONDS - started )) s"

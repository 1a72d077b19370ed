#!/usr/bin/env bash
# Installs edge-agent on a Debian-family device (Raspberry Pi OS 64-bit, Ubuntu, JetPack) as a
# systemd service. Run as root from an unpacked release file (no compiler, no network, no Node.js
# needed: the release carries its own) or from a clone (then it runs npm ci with the system's Node):
#   sudo deploy/install.sh --device-id ID [--mqtt-url mqtts://broker:8883 --ca ca.crt --cert ID.crt --key ID.key]
#        [--group G]... [--trusted-key fleet.pub]... [--prefix /opt/edge-agent] [--etc /etc/edge-agent]
#        [--root DIR] [--config-only] [--uninstall [--purge]]
# Certificates go where docs/security.md says (/etc/edge-agent/tls/{ca.crt,device.crt,device.key});
# --trusted-key installs the package signing keys the config trusts, so signed rollouts are
# accepted from the start. --config-only writes the config and the files, and checks them,
# without installing the code or the service. --root DIR installs into DIR as a system image
# root (user, files and the enabled unit; nothing is started). Idempotent: re-running upgrades
# the code in place and keeps config.json and the state (/var/lib/edge-agent). --uninstall
# stops and removes the service and the code, keeping config and state; --purge removes those
# and the user too.
set -euo pipefail

prefix=/opt/edge-agent
etc=/etc/edge-agent
device_id=$(hostname -s | tr -c 'A-Za-z0-9_\n-' '-')
mqtt_url="" ca="" cert="" key="" config_only=0 root="" uninstall=0 purge=0
groups=() trusted=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --etc) etc=$2; shift 2 ;;
    --device-id) device_id=$2; shift 2 ;;
    --mqtt-url) mqtt_url=$2; shift 2 ;;
    --ca) ca=$2; shift 2 ;;
    --cert) cert=$2; shift 2 ;;
    --key) key=$2; shift 2 ;;
    --group) groups+=("$2"); shift 2 ;;
    --trusted-key) trusted+=("$2"); shift 2 ;;
    --config-only) config_only=1; shift ;;
    --root) root=$(cd "$2" && pwd); shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (expected --device-id, --mqtt-url, --ca, --cert, --key, --group, --trusted-key, --prefix, --etc, --root, --config-only, --uninstall, --purge)" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
unit="$root/etc/systemd/system/edge-agent.service"
state=/var/lib/edge-agent
# systemd is running here (not in a container or an image root): start and stop the service.
live=0
[ -z "$root" ] && [ -d /run/systemd/system ] && live=1

if [ "$uninstall" = 1 ]; then
  if [ "$live" = 1 ]; then systemctl disable --now edge-agent.service 2>/dev/null || true
  elif [ -f "$unit" ]; then systemctl --root="${root:-/}" disable edge-agent.service 2>/dev/null || true; fi
  rm -f "$unit"
  [ "$live" = 1 ] && systemctl daemon-reload
  rm -rf "$root$prefix"
  if [ "$purge" = 1 ]; then
    rm -rf "$root$etc" "$root$state" "$root/var/log/edge-agent"
    if [ -n "$root" ]; then userdel --root "$root" edge-agent 2>/dev/null || true; else userdel edge-agent 2>/dev/null || true; fi
    echo "edge-agent removed, with its config, state and user"
  else
    echo "edge-agent removed; kept $root$etc and $root$state (--purge removes them)"
  fi
  exit 0
fi

# From a release file: its own Node.js, nothing to build. From a clone: the system's Node.js.
release=0
[ -f "$src/RELEASE.json" ] && [ -x "$src/node/bin/node" ] && release=1
if [ "$release" = 1 ]; then
  rel_arch=$(sed -n 's/.*"arch":"\([a-z0-9]*\)".*/\1/p' "$src/RELEASE.json")
  case "$(uname -m)" in x86_64) here=x64 ;; aarch64|arm64) here=arm64 ;; *) here=$(uname -m) ;; esac
  if [ "$rel_arch" != "$here" ] && [ -z "$root" ]; then
    echo "install.sh: this release is for $rel_arch, this machine is $here ($(uname -m)): take edge-agent-*-linux-$here.tar.gz" >&2; exit 1
  fi
  node="$src/node/bin/node"
  "$node" --version >/dev/null 2>&1 || node=""   # an image root for another architecture: no check-config here
  unit_node="$prefix/current/node/bin/node"
else
  node_help="install Node.js 20.17 or newer from nodejs.org or NodeSource (Debian bookworm's and Raspberry Pi OS's own nodejs package is 18), or install from a release file, which carries its own"
  command -v node >/dev/null || { echo "install.sh: Node.js is not installed: $node_help" >&2; exit 1; }
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 17) ? 0 : 1)' ||
    { echo "install.sh: Node.js $(node --version) is too old: $node_help" >&2; exit 1; }
  node=$(command -v node)
  unit_node=$node
fi
for f in "$ca" "$cert" "$key" "${trusted[@]}"; do
  [ -z "$f" ] || [ -r "$f" ] || { echo "install.sh: cannot read $f" >&2; exit 1; }
done
if [ -n "$cert$key" ] && { [ -z "$cert" ] || [ -z "$key" ]; }; then
  echo "install.sh: give --cert and --key together (the device's certificate and private key from scripts/make-ca.sh)" >&2; exit 2
fi
if [ -n "$mqtt_url" ] && [ "${mqtt_url#mqtts://}" != "$mqtt_url" ] && [ -z "$ca" ]; then
  echo "install.sh: $mqtt_url is TLS: give --ca (the fleet CA certificate) and --cert/--key (the device's, CN = $device_id)" >&2; exit 2
fi
if [ "${#trusted[@]}" = 0 ]; then
  echo "install.sh: warning: no --trusted-key: the agent refuses every model package until security.trustedKeys lists the fleet's signing key (edge-model keygen)" >&2
fi

user_exists=0
# Owners by name here; by number from an image root's own user database.
uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$root/etc/passwd"; }
gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$root/etc/group"; }
owned() {
  [ "$user_exists" = 1 ] || return 0
  if [ -z "$root" ]; then chown "$@"; return; fi
  local who=$1; shift
  local u=${who%%:*} g=""
  [ "$who" != "$u" ] && g=${who#*:}
  local spec
  spec="$(uid_of "$u")${g:+:$(gid_of "$g")}"
  chown "$spec" "$@"
}
user_check() {
  grep -q '^edge-agent:' "$root/etc/passwd" 2>/dev/null && user_exists=1
  [ -z "$root" ] && id edge-agent >/dev/null 2>&1 && user_exists=1
  return 0
}
if [ "$config_only" = 0 ]; then
  # A system user with no shell and no home of its own.
  if ! grep -q '^edge-agent:' "$root/etc/passwd" 2>/dev/null && { [ -n "$root" ] || ! id edge-agent >/dev/null 2>&1; }; then
    useradd ${root:+--root "$root"} --system --user-group --no-create-home --home-dir "$state" --shell /usr/sbin/nologin edge-agent
  fi
  user_check
  # Self-updating layout (docs/self-update.md): <prefix>/releases/VERSION, <prefix>/current -> it.
  if [ "$release" = 1 ]; then
    version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' "$src/RELEASE.json")
  else
    version=$(node -p 'require(process.argv[1]).version' "$src/package.json")
  fi
  [ -n "$version" ] || { echo "install.sh: no version in $src/RELEASE.json" >&2; exit 1; }
  top="$root$prefix"
  rels="$top/releases"
  if [ -e "$top" ] && [ ! -d "$rels" ]; then
    if [ -d "$top/dist" ] && [ ! -L "$top" ]; then
      # A flat install (before self-update: <prefix>/dist, <prefix>/node): its code goes once the
      # new layout is in place; config and state are kept.
      echo "install.sh: migrating the flat install in $prefix to $prefix/releases/$version"
      rm -rf "$top.flat" && mv "$top" "$top.flat"
    else
      echo "install.sh: $top exists and is neither an edge-agent install (releases/) nor a flat one (dist/): move it away or give --prefix" >&2; exit 1
    fi
  fi
  mkdir -p "$rels"
  new="$rels/.$version.new"
  rm -rf "$new"
  if [ "$release" = 1 ]; then
    # Code: the release as it is (re-installing a version replaces it whole).
    cp -a "$src" "$new"
  else
    # Code: copy the package and build it in place (native addon and TypeScript).
    mkdir -p "$new"
    tar -C "$src" --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./var --exclude=./.git -cf - . | tar -C "$new" -xf -
    (cd "$new" && npm ci --no-audit --no-fund && npm prune --omit=dev)
    printf '{"name":"edge-agent","version":"%s","arch":"%s"}\n' "$version" "$(node -p process.arch)" > "$new/RELEASE.json"
  fi
  chmod -R u+rwX,go+rX,go-w "$top"
  # The service user owns the code: the self-updater (running as it) adds releases and switches
  # the current link. Nobody else may write there.
  owned edge-agent:edge-agent -R "$top"
  rm -rf "$rels/.$version.old"
  [ -e "$rels/$version" ] && mv "$rels/$version" "$rels/.$version.old"
  mv "$new" "$rels/$version"
  ln -sfn "releases/$version" "$top/.current.new"
  owned edge-agent:edge-agent -h "$top/.current.new"
  mv -T "$top/.current.new" "$top/current"
  rm -rf "$rels/.$version.old" "$top.flat"
  cli="$top/current/dist/agent/cli.js"
else
  cli="$src/dist/agent/cli.js"
fi
user_check

# The code's root for the self-updater (update.root); none for --config-only.
update_root=""
[ "$config_only" = 1 ] || update_root=$prefix
# Config and identity: written once, never overwritten (paths relative to the config file).
etc_dir="$root$etc"
install -d -m 0750 "$etc_dir" "$etc_dir/tls"
owned root:edge-agent "$etc_dir" "$etc_dir/tls"
[ -z "$ca" ] || install -m 0644 "$ca" "$etc_dir/tls/ca.crt"
[ -z "$cert" ] || install -m 0644 "$cert" "$etc_dir/tls/device.crt"
[ -z "$key" ] || { install -m 0600 "$key" "$etc_dir/tls/device.key"; owned edge-agent "$etc_dir/tls/device.key"; }
keys=()
for k in "${trusted[@]}"; do install -m 0644 "$k" "$etc_dir/$(basename "$k")"; keys+=("$(basename "$k")"); done
if [ ! -f "$etc_dir/config.json" ]; then
  [ -n "$node" ] || { echo "install.sh: cannot run $src/node/bin/node here to write $etc_dir/config.json" >&2; exit 1; }
  "$node" -e '
    const [deviceId, mqttUrl, ca, cert, groups, keys, updateRoot] = process.argv.slice(1);
    const c = { deviceId, dataDir: "/var/lib/edge-agent", health: { host: "127.0.0.1", port: 8080 }, models: [] };
    if (updateRoot) c.update = { root: updateRoot };
    if (mqttUrl) {
      c.mqtt = { url: mqttUrl };
      if (ca) c.mqtt.ca = "tls/ca.crt";
      if (cert) Object.assign(c.mqtt, { cert: "tls/device.crt", key: "tls/device.key" });
      if (groups) c.mqtt.groups = groups.split(" ");
    }
    if (keys) c.security = { trustedKeys: keys.split(" ") };
    process.stdout.write(JSON.stringify(c, null, 2) + "\n");
  ' "$device_id" "$mqtt_url" "$ca" "$cert" "${groups[*]:-}" "${keys[*]:-}" "$update_root" > "$etc_dir/config.json"
  chmod 0640 "$etc_dir/config.json"
  owned root:edge-agent "$etc_dir/config.json"
elif [ -n "$update_root" ] && { [ -n "$node" ] || ! grep -q '"root"' "$etc_dir/config.json"; }; then
  # A config from a flat install: the one setting self-update needs is added (the rest is kept).
  [ -n "$node" ] || { echo "install.sh: cannot run $src/node/bin/node here to add update.root to $etc_dir/config.json: add \"update\": { \"root\": \"$prefix\" } by hand" >&2; exit 1; }
  "$node" -e '
    const fs = require("fs"), [file, updateRoot] = process.argv.slice(1);
    const c = JSON.parse(fs.readFileSync(file, "utf8"));
    if (c.update && c.update.root) process.exit(0);
    c.update = { ...(c.update || {}), root: updateRoot };
    fs.writeFileSync(file + ".tmp", JSON.stringify(c, null, 2) + "\n", { mode: 0o640 });
    fs.renameSync(file + ".tmp", file);
    console.log(`install.sh: set update.root = ${updateRoot} in ${file}`);
  ' "$etc_dir/config.json" "$update_root"
  owned root:edge-agent "$etc_dir/config.json"
fi
[ -z "$node" ] || "$node" "$cli" check-config --config "$etc_dir/config.json" >/dev/null
[ "$config_only" = 1 ] && { echo "edge-agent config written: $etc_dir/config.json"; exit 0; }

# The unit runs the bundled Node.js of a release (the system's for a clone install).
mkdir -p "$(dirname "$unit")"
sed -e "s#/opt/edge-agent#$prefix#g" -e "s#$prefix/current/node/bin/node #$unit_node #g" "$src/deploy/edge-agent.service" > "$unit"
if [ "$live" = 1 ]; then
  systemctl daemon-reload
  systemctl enable edge-agent.service
  systemctl restart edge-agent.service
  echo "edge-agent installed. Status: systemctl status edge-agent; logs: journalctl -u edge-agent -f"
else
  systemctl --root="${root:-/}" enable edge-agent.service 2>/dev/null
  echo "edge-agent installed in ${root:-/} and enabled; systemd is not running there: it starts at the next boot"
fi

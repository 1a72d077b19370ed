#!/usr/bin/env bash
# Installs edge-agent on a Debian-family device (Raspberry Pi OS 64-bit, Ubuntu, JetPack) as a
# systemd service. Run as root from an unpacked release or a clone:
#   sudo deploy/install.sh --device-id ID [--mqtt-url mqtts://broker:8883 --ca ca.crt --cert ID.crt --key ID.key]
#        [--group G]... [--trusted-key fleet.pub]... [--prefix /opt/edge-agent] [--etc /etc/edge-agent] [--config-only]
# Certificates go where docs/security.md says (/etc/edge-agent/tls/{ca.crt,device.crt,device.key});
# --trusted-key installs the package signing keys the config trusts, so signed rollouts are
# accepted from the start. --config-only writes the config and the files, and checks them,
# without installing the code or the service. Idempotent: re-running upgrades the code and
# keeps config.json and the state.
set -euo pipefail

prefix=/opt/edge-agent
etc=/etc/edge-agent
device_id=$(hostname -s | tr -c 'A-Za-z0-9_\n-' '-')
mqtt_url="" ca="" cert="" key="" config_only=0
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
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (expected --device-id, --mqtt-url, --ca, --cert, --key, --group, --trusted-key, --prefix, --etc, --config-only)" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
node_help="install Node.js 20.17 or newer from nodejs.org or NodeSource (Debian bookworm's and Raspberry Pi OS's own nodejs package is 18)"
command -v node >/dev/null || { echo "install.sh: Node.js is not installed: $node_help" >&2; exit 1; }
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 17) ? 0 : 1)' ||
  { echo "install.sh: Node.js $(node --version) is too old: $node_help" >&2; exit 1; }
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
if [ "$config_only" = 0 ]; then
  # A system user with no shell and no home of its own.
  if ! id edge-agent >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /var/lib/edge-agent --shell /usr/sbin/nologin edge-agent
  fi
  # Code: copy the package and build it in place (native addon and TypeScript).
  mkdir -p "$prefix"
  tar -C "$src" --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./var --exclude=./.git -cf - . | tar -C "$prefix" -xf -
  (cd "$prefix" && npm ci --no-audit --no-fund && npm prune --omit=dev)
  chown -R root:root "$prefix"
  cli="$prefix/dist/agent/cli.js"
else
  cli="$src/dist/agent/cli.js"
fi
id edge-agent >/dev/null 2>&1 && user_exists=1
owned() { if [ "$user_exists" = 1 ]; then chown "$@"; fi; }

# Config and identity: written once, never overwritten (paths relative to the config file).
install -d -m 0750 "$etc" "$etc/tls"
owned root:edge-agent "$etc" "$etc/tls"
[ -z "$ca" ] || install -m 0644 "$ca" "$etc/tls/ca.crt"
[ -z "$cert" ] || install -m 0644 "$cert" "$etc/tls/device.crt"
[ -z "$key" ] || { install -m 0600 "$key" "$etc/tls/device.key"; owned edge-agent "$etc/tls/device.key"; }
keys=()
for k in "${trusted[@]}"; do install -m 0644 "$k" "$etc/$(basename "$k")"; keys+=("$(basename "$k")"); done
if [ ! -f "$etc/config.json" ]; then
  node -e '
    const [deviceId, mqttUrl, ca, cert, groups, keys] = process.argv.slice(1);
    const c = { deviceId, dataDir: "/var/lib/edge-agent", health: { host: "127.0.0.1", port: 8080 }, models: [] };
    if (mqttUrl) {
      c.mqtt = { url: mqttUrl };
      if (ca) c.mqtt.ca = "tls/ca.crt";
      if (cert) Object.assign(c.mqtt, { cert: "tls/device.crt", key: "tls/device.key" });
      if (groups) c.mqtt.groups = groups.split(" ");
    }
    if (keys) c.security = { trustedKeys: keys.split(" ") };
    process.stdout.write(JSON.stringify(c, null, 2) + "\n");
  ' "$device_id" "$mqtt_url" "$ca" "$cert" "${groups[*]:-}" "${keys[*]:-}" > "$etc/config.json"
  chmod 0640 "$etc/config.json"
  owned root:edge-agent "$etc/config.json"
fi
node "$cli" check-config --config "$etc/config.json" >/dev/null
[ "$config_only" = 1 ] && { echo "edge-agent config written: $etc/config.json"; exit 0; }

sed "s#/opt/edge-agent#$prefix#g" "$src/deploy/edge-agent.service" > /etc/systemd/system/edge-agent.service
systemctl daemon-reload
systemctl enable edge-agent.service
systemctl restart edge-agent.service
echo "edge-agent installed. Status: systemctl status edge-agent; logs: journalctl -u edge-agent -f"

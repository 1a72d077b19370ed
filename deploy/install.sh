#!/usr/bin/env bash
# Installs edge-agent on a Debian-family device (Raspberry Pi OS, JetPack's Ubuntu) as a
# systemd service. Run as root from an unpacked release or a clone:
#   sudo deploy/install.sh [--device-id ID] [--mqtt-url mqtts://broker:8883] [--prefix /opt/edge-agent]
# Idempotent: re-running upgrades the code and keeps /etc/edge-agent/config.json and the state.
set -euo pipefail

prefix=/opt/edge-agent
device_id=$(hostname -s | tr -c 'A-Za-z0-9_-\n' '-')
mqtt_url=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --device-id) device_id=$2; shift 2 ;;
    --mqtt-url) mqtt_url=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (expected --prefix, --device-id, --mqtt-url)" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
command -v node >/dev/null || { echo "install.sh: Node.js >= 20 is required (apt-get install nodejs)" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "install.sh: Node.js >= 20 is required, found $(node --version)" >&2; exit 1; }

# A system user with no shell and no home of its own.
if ! id edge-agent >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /var/lib/edge-agent --shell /usr/sbin/nologin edge-agent
fi

# Code: copy the package and build it in place (native addon and TypeScript).
mkdir -p "$prefix"
tar -C "$src" --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./var --exclude=./.git -cf - . | tar -C "$prefix" -xf -
(cd "$prefix" && npm ci --no-audit --no-fund && npm prune --omit=dev)
chown -R root:root "$prefix"

# Config: written once, never overwritten.
install -d -m 0750 -o root -g edge-agent /etc/edge-agent
if [ ! -f /etc/edge-agent/config.json ]; then
  node -e '
    const [deviceId, mqttUrl] = process.argv.slice(1);
    const c = { deviceId, dataDir: "/var/lib/edge-agent", health: { host: "127.0.0.1", port: 8080 }, models: [] };
    if (mqttUrl) c.mqtt = { url: mqttUrl, ca: "/etc/edge-agent/ca.pem", cert: "/etc/edge-agent/device.pem", key: "/etc/edge-agent/device.key" };
    process.stdout.write(JSON.stringify(c, null, 2) + "\n");
  ' "$device_id" "$mqtt_url" > /etc/edge-agent/config.json
  chmod 0640 /etc/edge-agent/config.json
  chgrp edge-agent /etc/edge-agent/config.json
fi
node "$prefix/dist/agent/cli.js" check-config --config /etc/edge-agent/config.json >/dev/null

sed "s#/opt/edge-agent#$prefix#g" "$src/deploy/edge-agent.service" > /etc/systemd/system/edge-agent.service
systemctl daemon-reload
systemctl enable edge-agent.service
systemctl restart edge-agent.service
echo "edge-agent installed. Status: systemctl status edge-agent; logs: journalctl -u edge-agent -f"

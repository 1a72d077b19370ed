#!/usr/bin/env bash
# A small private CA for the fleet broker, with openssl from the OS. Creates (only what is
# missing, so it is safe to run again to add devices):
#   OUT/ca.key ca.crt                       the fleet CA (keep ca.key offline after installation)
#   OUT/broker.key broker.crt               Mosquitto's server certificate (SANs from --broker-host)
#   OUT/controller.key controller.crt       the controller's client identity (CN from --controller)
#   OUT/devices/ID.key ID.crt               one client identity per device (CN = device id)
#   OUT/acl                                 Mosquitto ACL: deploy/mosquitto/acl + each device's groups
# Usage: scripts/make-ca.sh [--out DIR] [--broker-host NAME|IP]... [--controller CN] [--days N]
#                           [--revoke DEVICE_ID]... [DEVICE_ID[:group1,group2]]...
# --revoke cuts a device off: its ACL block denies every topic (its certificate still passes
# TLS, but it can neither read nor write anything). Reload Mosquitto with the new acl.
# A device id is one topic level: [A-Za-z0-9][A-Za-z0-9_-]{0,63}, not "groups", not the controller's CN.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="./pki"
controller="edge-controller"
days=825
hosts=()
devices=()
revoke=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --broker-host) hosts+=("$2"); shift 2 ;;
    --controller) controller="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --revoke) revoke+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "make-ca: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) devices+=("$1"); shift ;;
  esac
done
[ ${#hosts[@]} -gt 0 ] || hosts=(localhost 127.0.0.1)

id_re='^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'
check_id() { # why: the CN becomes the MQTT username and is substituted into ACL patterns
  if ! [[ "$1" =~ $id_re ]]; then
    echo "make-ca: \"$1\" is not a valid $2 (expected [A-Za-z0-9][A-Za-z0-9_-]{0,63})" >&2; exit 2
  fi
}
check_id "$controller" "controller name"
[ "$controller" != "groups" ] || { echo 'make-ca: the controller cannot be named "groups"' >&2; exit 2; }

umask 077
mkdir -p "$out/devices"
cd "$out"

serial() { echo "0x$(openssl rand -hex 16)"; }
newkey() { [ -f "$1" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }

# issue KEY CRT CN EXTENSIONS: signs a leaf certificate with the CA, unless it already exists.
issue() {
  local key="$1" crt="$2" cn="$3" ext="$4"
  newkey "$key"
  [ -f "$crt" ] && return 0
  local extfile; extfile="$(mktemp)"
  printf '%b\n' "$ext" > "$extfile"
  openssl req -new -key "$key" -subj "/CN=$cn" 2>/dev/null \
    | openssl x509 -req -CA ca.crt -CAkey ca.key -set_serial "$(serial)" -days "$days" -sha256 \
        -extfile "$extfile" -out "$crt"
  rm -f "$extfile"
  chmod 644 "$crt"
  echo "make-ca: issued $crt (CN=$cn)"
}

if [ ! -f ca.crt ]; then
  newkey ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=edge-agent fleet CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -set_serial "$(serial)" -out ca.crt 2>/dev/null
  chmod 644 ca.crt
  echo "make-ca: created the CA in $out/ca.crt"
fi

san=""
for h in "${hosts[@]}"; do
  if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then san+="IP:$h,"; else san+="DNS:$h,"; fi
done
leaf="basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement"
issue broker.key broker.crt "${hosts[0]}" "$leaf\nextendedKeyUsage=serverAuth\nsubjectAltName=${san%,}"
issue controller.key controller.crt "$controller" "$leaf\nextendedKeyUsage=clientAuth"

for spec in "${devices[@]}"; do
  id="${spec%%:*}"
  check_id "$id" "device id"
  if [ "$id" = "groups" ] || [ "$id" = "$controller" ]; then
    echo "make-ca: a device cannot be named \"$id\" (it would get the rights of the group topics or the controller)" >&2; exit 2
  fi
  issue "devices/$id.key" "devices/$id.crt" "$id" "$leaf\nextendedKeyUsage=clientAuth"
  if [[ "$spec" == *:* ]]; then
    groups="${spec#*:}"
    : > "devices/$id.groups"
    IFS=',' read -r -a gs <<< "$groups"
    for g in "${gs[@]}"; do
      [ -z "$g" ] && continue
      check_id "$g" "group name"
      echo "$g" >> "devices/$id.groups"
    done
    chmod 644 "devices/$id.groups"
  fi
done

for id in "${revoke[@]}"; do
  check_id "$id" "device id"
  : > "devices/$id.revoked"
  chmod 644 "devices/$id.revoked"
  echo "make-ca: revoked $id (deny-all ACL block)"
done

# The ACL: the shipped base (patterns, controller) plus, per device, read rights on the
# desired state of its own groups. Rewritten every run from the .groups files.
{
  sed "s/^user edge-controller\$/user $controller/" "$here/../deploy/mosquitto/acl"
  for f in devices/*.groups; do
    [ -e "$f" ] || continue
    id="$(basename "$f" .groups)"
    [ -e "devices/$id.revoked" ] && continue
    echo ""
    echo "user $id"
    while read -r g; do
      [ -n "$g" ] && echo "topic read edge/v1/groups/$g/models/desired"
    done < "$f"
  done
  # Revoked devices: "deny" is checked before every grant, patterns included.
  for f in devices/*.revoked; do
    [ -e "$f" ] || continue
    echo ""
    echo "user $(basename "$f" .revoked)"
    echo "topic deny #"
  done
} > acl.tmp
chmod 644 acl.tmp
mv acl.tmp acl

#!/usr/bin/env bash
# A multi-host test cluster on one machine: each "host" is a network namespace with its own
# address on a bridge, so replicas and clients talk over a real network stack between distinct
# hosts, and the distributed experiment path runs end to end. Needs root (ip netns, veth, bridge).
#   scripts/netns-cluster.sh up [hosts (5)]     create pompe-h1..hN at 10.77.0.11..
#   scripts/netns-cluster.sh down               remove them (and their directories)
#   scripts/netns-cluster.sh exec <ip> <cmd>    run a shell command on the host with that address
#   scripts/netns-cluster.sh test [replicas (4)] [clients (4)] [seconds (5)]
#       the whole distributed path as on real hosts: the npm package installed on each host
#       (scripts/deploy.sh install), each replica's key made on its own host (deploy.sh keygen),
#       cluster.json built from the public keys with TLS on (gen-conf --public-keys --tls), each
#       host sent its part of the conf (deploy.sh conf), then run_server.sh distributed,
#       run_client.sh, data.sh, process, and down.
# Each host has a disk of its own: $HOST_DIR, which its commands see at $POMPE_REMOTE_DIR (a bind
# mount inside the namespace), so no host reads another's files, secrets included.
# NETNS_DELAY_MS adds a one-way delay on every host's link (tc netem), e.g. NETNS_DELAY_MS=1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BRIDGE=pompe-br0
PREFIX=10.77.0
NS_PREFIX=pompe-h
STATE="${NETNS_STATE_DIR:-/var/tmp/pompe-netns}"
HOST_DIR="$STATE/hosts"
# Where every host sees its own directory (as a real deployment has one path on every host).
REMOTE_DIR="$STATE/remote"

hosts() { ip netns list | awk '{print $1}' | grep "^$NS_PREFIX" | sort -V || true; }

up() {
  local count="${1:-5}"
  ip link show "$BRIDGE" >/dev/null 2>&1 || {
    ip link add "$BRIDGE" type bridge
    ip addr add "$PREFIX.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  }
  for i in $(seq 1 "$count"); do
    local ns="$NS_PREFIX$i"
    ip netns list | grep -q "^$ns\b" && continue
    ip netns add "$ns"
    ip link add "pompe-v$i" type veth peer name eth0 netns "$ns"
    ip link set "pompe-v$i" master "$BRIDGE" up
    ip netns exec "$ns" ip addr add "$PREFIX.$((10 + i))/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip route add default via "$PREFIX.1"
    if [ -n "${NETNS_DELAY_MS:-}" ]; then ip netns exec "$ns" tc qdisc add dev eth0 root netem delay "${NETNS_DELAY_MS}ms"; fi
    mkdir -p "$HOST_DIR/$ns" "$REMOTE_DIR"
    echo "host $ns at $PREFIX.$((10 + i))"
  done
}

down() {
  for ns in $(hosts); do ip netns pids "$ns" | xargs -r kill -KILL 2>/dev/null || true; ip netns del "$ns"; done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$STATE"
}

exec_on() {
  local ip="$1"; shift
  for ns in $(hosts); do
    if ip netns exec "$ns" ip -4 -o addr show dev eth0 2>/dev/null | grep -q "inet $ip/"; then
      # `ip netns exec` gives the command a mount namespace of its own: the bind mount is seen by
      # it and what it starts (replicas keep it), and by nothing else.
      exec ip netns exec "$ns" bash -c "mount --bind '$HOST_DIR/$ns' '$REMOTE_DIR' && $*"
    fi
  done
  echo "no namespace host has address $ip" >&2
  exit 1
}

run_test() {
  local replicas="${1:-4}" clients="${2:-4}" seconds="${3:-5}"
  local count=$((replicas + 1)) conf="$ROOT/experiments/conf-distributed"
  trap down EXIT
  down
  up "$count"
  local replica_ips=() client_ip="$PREFIX.$((10 + count))"
  for i in $(seq 1 "$replicas"); do replica_ips+=("$PREFIX.$((10 + i))"); done
  # The hosts reach no registry: npm installs from this machine's cache, which `npm ci` filled.
  export POMPE_REMOTE="$0 exec" POMPE_REMOTE_DIR="$REMOTE_DIR" POMPE_NPM_INSTALL_OPTS="--offline"
  echo "== the package on every host"
  "$ROOT/scripts/deploy.sh" install "${replica_ips[@]}" "$client_ip"
  echo "== each replica's key made on its host; only the public keys come back"
  "$ROOT/scripts/deploy.sh" keygen "${replica_ips[@]}" >"$STATE/public-keys.txt"
  cat "$STATE/public-keys.txt"
  echo "== cluster.json from the public keys, with TLS"
  rm -rf "$conf"
  (IFS=,; node "$ROOT/dist/server/cli.js" gen-conf --replicas "$replicas" --hosts "${replica_ips[*]}" --client-hosts "$client_ip" \
    --public-keys "$STATE/public-keys.txt" --tls --out "$conf")
  if ls "$conf"/replica-*.secret.json >/dev/null 2>&1; then echo "a secret key is in $conf: it should be on its host only" >&2; exit 1; fi
  "$ROOT/scripts/deploy.sh" conf "$conf"
  for ip in "${replica_ips[@]}" "$client_ip"; do
    echo "$ip holds: $("$0" exec "$ip" "ls '$REMOTE_DIR/experiments/conf-distributed'" | paste -sd' ')"
  done
  echo "== run"
  "$ROOT/experiments/run_server.sh" distributed
  curl -sf "http://${replica_ips[0]}:30000/status" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const t = JSON.parse(s).transport.server; console.log(`replica 0 serves on ${t.backend}, tls ${t.tls}`); })'
  "$ROOT/experiments/run_client.sh" "$clients" "$seconds" distributed
  "$ROOT/experiments/data.sh" distributed
  "$ROOT/experiments/process.sh" order
  "$ROOT/experiments/process.sh" exec
}

case "${1:-}" in
  up) up "${2:-5}" ;;
  down) down ;;
  exec) shift; exec_on "$@" ;;
  test) shift; run_test "$@" ;;
  *) echo "usage: $0 up [hosts] | down | exec <ip> <cmd> | test [replicas] [clients] [seconds]" >&2; exit 2 ;;
esac

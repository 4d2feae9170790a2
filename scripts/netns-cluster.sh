#!/usr/bin/env bash
# A multi-host test cluster on one machine: each "host" is a network namespace with its own
# address on a bridge, so replicas and clients talk over a real network stack between distinct
# hosts, and the distributed experiment path runs end to end. Needs root (ip netns, veth, bridge).
#   scripts/netns-cluster.sh up [hosts (5)]     create pompe-h1..hN at 10.77.0.11..
#   scripts/netns-cluster.sh down               remove them
#   scripts/netns-cluster.sh exec <ip> <cmd>    run a shell command on the host with that address
#   scripts/netns-cluster.sh test [replicas (4)] [clients (4)] [seconds (5)]
#       up, gen-conf for the hosts, run_server.sh distributed, run_client.sh, data.sh, process, down
# NETNS_DELAY_MS adds a one-way delay on every host's link (tc netem), e.g. NETNS_DELAY_MS=1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BRIDGE=pompe-br0
PREFIX=10.77.0
NS_PREFIX=pompe-h

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
    echo "host $ns at $PREFIX.$((10 + i))"
  done
}

down() {
  for ns in $(hosts); do ip netns pids "$ns" | xargs -r kill -KILL 2>/dev/null || true; ip netns del "$ns"; done
  ip link del "$BRIDGE" 2>/dev/null || true
}

exec_on() {
  local ip="$1"; shift
  for ns in $(hosts); do
    if ip netns exec "$ns" ip -4 -o addr show dev eth0 2>/dev/null | grep -q "inet $ip/"; then
      exec ip netns exec "$ns" bash -c "$*"
    fi
  done
  echo "no namespace host has address $ip" >&2
  exit 1
}

run_test() {
  local replicas="${1:-4}" clients="${2:-4}" seconds="${3:-5}"
  local count=$((replicas + 1))
  trap down EXIT
  up "$count"
  local server_hosts client_host
  server_hosts=$(for i in $(seq 1 "$replicas"); do printf '%s.%d,' "$PREFIX" $((10 + i)); done)
  server_hosts="${server_hosts%,}"
  client_host="$PREFIX.$((10 + count))"
  [ -f "$ROOT/dist/server/cli.js" ] || (cd "$ROOT" && npm run build --silent)
  node "$ROOT/dist/server/cli.js" gen-conf --replicas "$replicas" --hosts "$server_hosts" --client-hosts "$client_host" \
    --out "$ROOT/experiments/conf-distributed" --force
  # A new cluster: the stores of an earlier one (on the hosts' shared disk) belong to other keys.
  rm -rf "$ROOT/experiments/log/data-distributed"
  export POMPE_REMOTE="$0 exec" POMPE_REMOTE_DIR="$ROOT"
  "$ROOT/experiments/run_server.sh" distributed
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

#!/usr/bin/env bash
# The flooding benchmark (issue 12, the Isotaxis-style attack): on one fresh cluster of replica
# processes on this machine, honest benchmark clients run alone (the baseline), then once with
# each kind of flooding client process alongside (pompe flood: valid — validly signed batches of
# one key as fast as the replicas read them; junk — bad signatures and malformed batches; fresh —
# a new key every few batches). Prints, per phase, the honest clients' executed throughput and
# exec latency against the baseline, what the flooder sent and was answered, and each replica's
# resident memory and CPU. A script that prints figures, not a test.
#
#   scripts/bench-flood.sh [seconds per phase (20)] [kinds (valid,junk,fresh)]
#
# The flooder runs from 127.0.0.2 (replicas serve client work fairly per source address; the
# honest clients come from 127.0.0.1) under `nice -n 19`: on one machine its CPU would otherwise be
# taken from the replicas, where a real attacker's is its own.
# Environment: FLOOD_HONEST_OPTS (pompe bench options of the honest clients, default
# "--clients 4 --batch-size 100 --outstanding 2"), FLOOD_OPTS (extra pompe flood options),
# BENCH_REPLICAS (4), BENCH_GEN_CONF_OPTS, BENCH_KEEP=1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

seconds="${1:-20}"
kinds="${2:-valid,junk,fresh}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [seconds per phase] [kinds: valid,junk,fresh]" >&2; exit 2; }
replicas="${BENCH_REPLICAS:-4}"
read -r -a honest_opts <<<"${FLOOD_HONEST_OPTS:---clients 4 --batch-size 100 --outstanding 2}"
read -r -a flood_opts <<<"${FLOOD_OPTS:-}"

[ -f dist/server/cli.js ] || npm run build --silent
# shellcheck source=scripts/lib/cluster.sh
source "$ROOT/scripts/lib/cluster.sh"
cluster_start
echo "bench-flood: $replicas replicas on 127.0.0.1, $seconds s per phase; honest: pompe bench ${honest_opts[*]}; flooder from 127.0.0.2 (nice 19)"

# One phase: the honest clients for $seconds (with `pompe flood --kind $1` alongside unless $1 is
# "none"); prints one summary line and keeps the figures for the table.
declare -A tput p50 p99 flood_line
phase() {
  local kind="$1" out="$work/honest-$1.txt" flood_pid=""
  rss_sampling_start "$work/rss-$kind.txt"
  if [ "$kind" != none ]; then
    nice -n 19 node dist/server/cli.js flood --conf "$work/conf" --kind "$kind" --duration "$((seconds + 3))" \
      --local-address 127.0.0.2 "${flood_opts[@]}" >"$work/flood-$kind.txt" 2>&1 &
    flood_pid=$!
    extra_pids+=("$flood_pid")
    sleep 1
  fi
  node dist/server/cli.js bench --conf "$work/conf" --duration "$seconds" --log-dir "$work/log-$kind" "${honest_opts[@]}" >"$out"
  [ -n "$flood_pid" ] && wait "$flood_pid" || true
  tput[$kind]="$(awk '/^executed:/ {gsub(",", "", $4); print $4; exit}' "$out" | sed 's#/s##')"
  p50[$kind]="$(awk '/^exec latency/ {print $5; exit}' "$out")"
  p99[$kind]="$(awk '/^exec latency/ {print $9; exit}' "$out")"
  flood_line[$kind]="$( [ "$kind" = none ] && echo "-" || tail -1 "$work/flood-$kind.txt")"
  echo "phase $kind: honest executed ${tput[$kind]} cmd/s, exec p50 ${p50[$kind]} ms, p99 ${p99[$kind]} ms"
  echo "  honest $(grep -m1 '^client cpu' "$out" || echo 'client cpu: not reported')"
  [ "$kind" != none ] && echo "  ${flood_line[$kind]}"
  echo "  replicas:"
  rss_sampling_report "$work/rss-$kind.txt" | sed 's/^/  /'
}

phase none
IFS=',' read -r -a kind_list <<<"$kinds"
for k in "${kind_list[@]}"; do phase "$k"; done

echo
echo "honest clients with each flood, against the baseline (targets: throughput ≥ 80%, exec p99 ≤ 2×, replica RSS < 512 MiB):"
printf '  %-6s %12s %8s %12s %12s %8s\n' phase 'cmd/s' ratio 'p50 ms' 'p99 ms' 'p99 ×'
for k in none "${kind_list[@]}"; do
  awk -v k="$k" -v t="${tput[$k]}" -v t0="${tput[none]}" -v a="${p50[$k]}" -v b="${p99[$k]}" -v b0="${p99[none]}" \
    'BEGIN { printf "  %-6s %12.1f %7.0f%% %12s %12s %8.2f\n", k, t, (t0 > 0 ? 100 * t / t0 : 0), a, b, (b0 > 0 ? b / b0 : 0) }'
done

#!/usr/bin/env bash
# The flooding benchmark (issue 12, the Isotaxis-style attack): on one fresh cluster of replica
# processes on this machine, honest benchmark clients run alone (the baseline), then once with
# each kind of flooding client process alongside (pompe flood: valid — validly signed batches of
# one key as fast as the replicas read them; junk — bad signatures and malformed batches; fresh —
# a new key every few batches). Prints, per phase, the honest clients' executed throughput and
# exec latency against the baseline, what the flooder sent and was answered, and each replica's
# resident memory and CPU. A script that prints figures, not a test.
#
# The baseline runs before each flood phase and once more after the last (none, valid, none, junk,
# none, fresh, none), and each flood phase is compared with the mean of the baselines either side
# of it: on a shared machine the honest figures drift by tens of percent from one phase to the next
# with no flood at all, and a single baseline at the start turns that drift into the ratio.
#
#   scripts/bench-flood.sh [seconds per phase (20)] [kinds (valid,junk,fresh)]
#
# The flooder runs from 127.0.0.2 (replicas serve client work fairly per source address; the
# honest clients come from 127.0.0.1) under the SCHED_IDLE policy (`chrt --idle 0`): on one machine
# its CPU would otherwise be taken from the replicas and the honest clients, where a real
# attacker's is its own. SCHED_IDLE runs it only on CPU nobody else wants and preempts it at once
# when they do; `nice -n 19` (FLOOD_SCHED=nice) still lets it hold a core for a scheduler slice
# when a replica wakes, which delays every protocol hop by up to a few ms. Its flood line says the
# rate it reached either way.
# FLOOD_CPU_PERCENT=N also caps the flooder's CPU at N% of one core (a cgroup's CPU quota; root),
# to model a flooder on a machine of its own: its flood line says what rate it still reached.
# Environment: FLOOD_SCHED (idle | nice), FLOOD_HONEST_OPTS (pompe bench options of the honest clients, default
# "--clients 4 --batch-size 100 --outstanding 2"), FLOOD_OPTS (extra pompe flood options),
# FLOOD_CPU_PERCENT, FLOOD_NODE_ARGS (node options of the flooder, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"),
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

case "${FLOOD_SCHED:-idle}" in
  idle) flood_sched=(chrt --idle 0) ;;
  nice) flood_sched=(nice -n 19) ;;
  *) echo "FLOOD_SCHED must be idle or nice" >&2; exit 2 ;;
esac

[ -f dist/server/cli.js ] || npm run build --silent
# shellcheck source=scripts/lib/cluster.sh
source "$ROOT/scripts/lib/cluster.sh"

# The flooder's CPU cap: a cgroup (v2 cpu.max, or v1 cpu.cfs_quota_us) its process starts in.
flood_cgroup=""
flood_cap="uncapped"
if [ -n "${FLOOD_CPU_PERCENT:-}" ]; then
  [[ "$FLOOD_CPU_PERCENT" =~ ^[1-9][0-9]*$ ]] || { echo "FLOOD_CPU_PERCENT must be a positive integer" >&2; exit 2; }
  quota_us=$((FLOOD_CPU_PERCENT * 1000))
  if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
    flood_cgroup="/sys/fs/cgroup/pompe-flood-$$"
    mkdir "$flood_cgroup" && echo "$quota_us 100000" >"$flood_cgroup/cpu.max"
  elif [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    flood_cgroup="/sys/fs/cgroup/cpu/pompe-flood-$$"
    mkdir "$flood_cgroup" && echo 100000 >"$flood_cgroup/cpu.cfs_period_us" && echo "$quota_us" >"$flood_cgroup/cpu.cfs_quota_us"
  else
    echo "FLOOD_CPU_PERCENT: no writable cgroup CPU controller here (needs root and cgroup v1 or v2 with cpu)" >&2
    exit 2
  fi
  flood_cap="CPU capped at $FLOOD_CPU_PERCENT% of a core"
fi
flood_cgroup_cleanup() { [ -n "$flood_cgroup" ] && rmdir "$flood_cgroup" 2>/dev/null || true; }
trap 'cluster_cleanup; flood_cgroup_cleanup' EXIT

cluster_start
echo "bench-flood: $replicas replicas on 127.0.0.1, $seconds s per phase; honest: pompe bench ${honest_opts[*]}; flooder from 127.0.0.2 (${flood_sched[*]}, $flood_cap)"

# One phase: the honest clients for $seconds (with `pompe flood --kind $1` alongside unless $1 is
# "none"); prints one summary line and keeps the figures for the table under the name $2.
declare -A tput p50 p99 flood_line
phase() {
  local kind="$1" name="$2" out="$work/honest-$2.txt" flood_pid=""
  rss_sampling_start "$work/rss-$name.txt"
  if [ "$kind" != none ]; then
    # In the cgroup from its first instruction (a shell that joins it, then becomes the flooder).
    sh -c 'if [ -n "$1" ]; then echo $$ >"$1/cgroup.procs"; fi; shift; exec "$@"' flood "$flood_cgroup" \
      "${flood_sched[@]}" node ${FLOOD_NODE_ARGS:-} dist/server/cli.js flood --conf "$work/conf" --kind "$kind" --duration "$((seconds + 3))" \
      --local-address 127.0.0.2 "${flood_opts[@]}" >"$work/flood-$kind.txt" 2>&1 &
    flood_pid=$!
    extra_pids+=("$flood_pid")
    sleep 1
  fi
  node dist/server/cli.js bench --conf "$work/conf" --duration "$seconds" --log-dir "$work/log-$name" "${honest_opts[@]}" >"$out"
  [ -n "$flood_pid" ] && wait "$flood_pid" || true
  tput[$name]="$(awk '/^executed:/ {gsub(",", "", $4); print $4; exit}' "$out" | sed 's#/s##')"
  p50[$name]="$(awk '/^exec latency/ {print $5; exit}' "$out")"
  p99[$name]="$(awk '/^exec latency/ {print $9; exit}' "$out")"
  flood_line[$name]="$( [ "$kind" = none ] && echo "-" || tail -1 "$work/flood-$kind.txt")"
  echo "phase $name: honest executed ${tput[$name]} cmd/s, exec p50 ${p50[$name]} ms, p99 ${p99[$name]} ms"
  echo "  honest $(grep -m1 '^client cpu' "$out" || echo 'client cpu: not reported')"
  echo "  honest $(grep -m1 '^late restarts' "$out" || echo 'late restarts: not reported')"
  [ "$kind" != none ] && echo "  ${flood_line[$name]}"
  echo "  replicas:"
  rss_sampling_report "$work/rss-$name.txt" | sed 's/^/  /'
}

IFS=',' read -r -a kind_list <<<"$kinds"
phase none none0
for i in "${!kind_list[@]}"; do
  phase "${kind_list[$i]}" "${kind_list[$i]}"
  phase none "none$((i + 1))"
done

echo
echo "honest clients with each flood, against the mean of the baselines just before and after it"
echo "(targets: throughput ≥ 80%, exec p99 ≤ 2×, replica RSS < 512 MiB):"
printf '  %-6s %12s %12s %8s %12s %12s %8s\n' phase 'cmd/s' 'base cmd/s' ratio 'p50 ms' 'p99 ms' 'p99 ×'
for i in "${!kind_list[@]}"; do
  k="${kind_list[$i]}" before="none$i" after="none$((i + 1))"
  awk -v k="$k" -v t="${tput[$k]}" -v ta="${tput[$before]}" -v tb="${tput[$after]}" -v a="${p50[$k]}" -v b="${p99[$k]}" \
    -v ba="${p99[$before]}" -v bb="${p99[$after]}" \
    'BEGIN { t0 = (ta + tb) / 2; b0 = (ba + bb) / 2
             printf "  %-6s %12.1f %12.1f %7.0f%% %12s %12s %8.2f\n", k, t, t0, (t0 > 0 ? 100 * t / t0 : 0), a, b, (b0 > 0 ? b / b0 : 0) }'
done
echo "  baselines (cmd/s, in order): $(for i in $(seq 0 "${#kind_list[@]}"); do printf '%s ' "${tput[none$i]}"; done)"

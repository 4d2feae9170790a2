#!/usr/bin/env bash
# The headline benchmarks of DESIGN.md on this machine: n replicas as separate processes on
# 127.0.0.1 (a fresh cluster in a temporary directory, nothing of experiments/ touched), the
# benchmark client for a fixed time, then the client's summary and each replica's CPU time and
# resident memory (sampled every second: the largest, and the last against the first, so growth
# over a long run shows). A script that prints figures, not a test.
#
#   scripts/bench-cluster.sh peak  [seconds (30)]   4 clients, batches of 1000, 4 in flight each
#   scripts/bench-cluster.sh light [seconds (30)]   1 client, batches of 1, 4 in flight
#   scripts/bench-cluster.sh custom [seconds] -- <pompe bench options>
# Environment: BENCH_REPLICAS (4), BENCH_GEN_CONF_OPTS (extra gen-conf options, e.g.
# "--commit-rule 2-chain", or "--tls" for TLS on every link), BENCH_SERVER_BACKEND (uws: refuse
# to run where no uWS build loads, so figures never silently come from ws; ws or auto to measure
# that backend), BENCH_KEEP=1 keeps the temporary directory (logs, stores), BENCH_CLIENT_NODE_ARGS (node options of
# the benchmark client, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"; replicas: BENCH_REPLICA_NODE_ARGS),
# BENCH_BYZANTINE="<id>:<kind>" runs that replica with `--byzantine <kind>`, BENCH_SIDECAR a
# command run beside the benchmark client (with BENCH_CONF set to the cluster's conf directory),
# e.g. an attacking client (scripts/bench-attack.sh uses both). The node on PATH runs everything
# (e.g. PATH=<dir>/node_modules/.bin:$PATH after npm install --prefix <dir> node@22).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

kind="${1:-peak}"
seconds="${2:-30}"
shift $(( $# > 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
case "$kind" in
  peak) bench_opts=(--clients 4 --batch-size 1000 --outstanding 4) ;;
  light) bench_opts=(--clients 1 --batch-size 1 --outstanding 4) ;;
  custom) bench_opts=("$@") ;;
  *) echo "usage: $0 peak|light|custom [seconds] [-- bench options]" >&2; exit 2 ;;
esac
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "seconds must be a positive integer" >&2; exit 2; }
replicas="${BENCH_REPLICAS:-4}"

[ -f dist/server/cli.js ] || npm run build --silent
# shellcheck source=scripts/lib/cluster.sh
source "$ROOT/scripts/lib/cluster.sh"
cluster_start
server=$(curl -sf http://127.0.0.1:${bench_http_base}/status | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const t = JSON.parse(s).transport.server; console.log(`${t.backend}${t.tls ? " + TLS" : ""}`); })')
rss_sampling_start "$work/rss.txt"

echo "bench-cluster $kind: $replicas replicas on 127.0.0.1 (Node $(node --version), $server), $seconds s, pompe bench ${bench_opts[*]}" \
  "(conf: $(node -e 'const p=require(process.argv[1]).protocol; console.log(`${p.commitRule}, slot ${p.slotUs} µs, Δ ${p.deltaUs} µs`)' "$work/conf/cluster.json"))"
sidecar=""
if [ -n "${BENCH_SIDECAR:-}" ]; then
  BENCH_CONF="$work/conf" bash -c "$BENCH_SIDECAR" >"$work/sidecar.out" 2>&1 &
  sidecar=$!
fi
node ${BENCH_CLIENT_NODE_ARGS:-} dist/server/cli.js bench --conf "$work/conf" --duration "$seconds" --log-dir "$work/log" "${bench_opts[@]}" | grep -v '^client[0-9]*:' | tee "$work/bench.txt"
# Replica CPU per executed command, all replicas together (the bench counts its own, client, CPU).
cpu_all="$(replicas_cpu_s)"
executed="$(awk '/^executed:/ { gsub(",", "", $2); print $2; exit }' "$work/bench.txt")"
awk -v c="$cpu_all" -v e="${executed:-0}" -v n="$replicas" 'BEGIN { printf "replica cpu: %.1f s, all %d replicas (%.2f µs per executed command)\n", c, n, (e > 0 ? c * 1e6 / e : 0) }'
if [ -n "$sidecar" ]; then
  kill "$sidecar" 2>/dev/null || true
  wait "$sidecar" 2>/dev/null || true
  echo "sidecar ($BENCH_SIDECAR):"
  sed 's/^/  /' "$work/sidecar.out" | tail -n 5
fi

echo "replicas (resident memory sampled every second over the run; CPU time during it):"
rss_sampling_report "$work/rss.txt"
if [ "$seconds" -ge 120 ]; then
  echo "resident memory every minute (MiB, one column per replica):"
  awk 'NR % 60 == 1 { line = sprintf("  %3d min:", (NR - 1) / 60); for (i = 1; i <= NF; i++) line = line sprintf(" %5.0f", $i / 1024); print line }' "$work/rss.txt"
fi
echo "store size per replica on disk: $(du -sh "$work"/data/replica-* 2>/dev/null | awk '{print $1}' | paste -sd' ')"


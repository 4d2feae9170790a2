#!/usr/bin/env bash
# The headline benchmarks of DESIGN.md on this machine: n replicas as separate processes on
# 127.0.0.1 (a fresh cluster in a temporary directory, nothing of experiments/ touched), the
# benchmark client for a fixed time, then the client's summary and each replica's CPU time and
# resident memory (sampled every second: the largest, and the last against the first, so growth
# over a long run shows). A script that prints figures, not a test.
#
#   scripts/bench-cluster.sh peak  [seconds (30)]   4 clients, batches of 1000, 4 in flight each
#   scripts/bench-cluster.sh shape [seconds]        2 clients, batches of 700, 8 in flight each
#                                                   (Pompe-HS's benchmark shape)
#   scripts/bench-cluster.sh light [seconds]        1 client, batches of 1, 4 in flight
#   scripts/bench-cluster.sh unbatched [seconds]    1 client, batches of 1, 64 in flight
#   scripts/bench-cluster.sh idle [seconds]         no client: what the cluster costs doing nothing
#   scripts/bench-cluster.sh custom [seconds] -- <pompe bench options>
# Each prints the client's summary, the replicas' CPU per executed command and each replica's share
# of a core. scripts/bench-matrix.sh runs several workloads several times, on one build or two.
# Environment: BENCH_REPLICAS (4), BENCH_GEN_CONF_OPTS (extra gen-conf options, e.g.
# "--commit-rule 2-chain", or "--tls" for TLS on every link), BENCH_SERVER_BACKEND (uws: refuse
# to run where no uWS build loads, so figures never silently come from ws; ws or auto to measure
# that backend), BENCH_KEEP=1 keeps the temporary directory (logs, stores), BENCH_CLIENT_NODE_ARGS (node options of
# the benchmark client, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"; replicas: BENCH_REPLICA_NODE_ARGS),
# BENCH_BYZANTINE="<id>:<kind>" runs that replica with `--byzantine <kind>`, BENCH_SIDECAR a
# command run beside the benchmark client (with BENCH_CONF set to the cluster's conf directory),
# e.g. an attacking client (scripts/bench-attack.sh uses both). The node on PATH runs everything
# (e.g. PATH=<dir>/node_modules/.bin:$PATH after npm install --prefix <dir> node@22).
# BENCH_TREE=<dir>: run the build in <dir> (a built checkout, e.g. a git worktree of an older
# commit) with this script, so two versions are measured the same way.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
tree="$(cd "${BENCH_TREE:-$ROOT}" && pwd)"
cd "$tree"

kind="${1:-peak}"
seconds="${2:-30}"
shift $(( $# > 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
case "$kind" in
  peak) bench_opts=(--clients 4 --batch-size 1000 --outstanding 4) ;;
  shape) bench_opts=(--clients 2 --batch-size 700 --outstanding 8) ;;
  light) bench_opts=(--clients 1 --batch-size 1 --outstanding 4) ;;
  unbatched) bench_opts=(--clients 1 --batch-size 1 --outstanding 64) ;;
  idle) bench_opts=() ;;
  custom) bench_opts=("$@") ;;
  *) echo "usage: $0 peak|shape|light|unbatched|idle|custom [seconds] [-- bench options]" >&2; exit 2 ;;
esac
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "seconds must be a positive integer" >&2; exit 2; }
replicas="${BENCH_REPLICAS:-4}"

if [ ! -f dist/server/cli.js ]; then
  [ "$tree" = "$ROOT" ] || { echo "BENCH_TREE $tree has no build (dist/server/cli.js): run npm run build there" >&2; exit 2; }
  npm run build --silent
fi
# shellcheck source=scripts/lib/cluster.sh
source "$ROOT/scripts/lib/cluster.sh"
cluster_start
server=$(curl -sf http://127.0.0.1:${bench_http_base}/status | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const t = JSON.parse(s).transport?.server; console.log(t?.backend ? `${t.backend}${t.tls ? " + TLS" : ""}` : "server backend not reported by this build"); })')
rss_sampling_start "$work/rss.txt"

echo "bench-cluster $kind: $replicas replicas on 127.0.0.1 (Node $(node --version), $server), $seconds s, $([ "$kind" = idle ] && echo "no client" || echo "pompe bench ${bench_opts[*]}")" \
  "(build: $tree at $(git -C "$tree" rev-parse --short HEAD 2>/dev/null || echo '?'))" \
  "(conf: $(node -e 'const p=require(process.argv[1]).protocol; console.log(`${p.commitRule}, slot ${p.slotUs} µs, Δ ${p.deltaUs} µs`)' "$work/conf/cluster.json"))"
sidecar=""
if [ -n "${BENCH_SIDECAR:-}" ]; then
  BENCH_CONF="$work/conf" bash -c "$BENCH_SIDECAR" >"$work/sidecar.out" 2>&1 &
  sidecar=$!
fi
started_ms=$(date +%s%3N)
if [ "$kind" = idle ]; then
  sleep "$seconds"
  : >"$work/bench.txt"
else
  node ${BENCH_CLIENT_NODE_ARGS:-} dist/server/cli.js bench --conf "$work/conf" --duration "$seconds" --log-dir "$work/log" "${bench_opts[@]}" | grep -v '^client[0-9]*:' | tee "$work/bench.txt"
fi
# Replica CPU per executed command, all replicas together (the bench counts its own, client, CPU),
# and per replica as a share of one core over the time the client ran (its warm-up included).
cpu_all="$(replicas_cpu_s)"
elapsed_ms=$(( $(date +%s%3N) - started_ms ))
executed="$(awk '/^executed:/ { gsub(",", "", $2); print $2; exit }' "$work/bench.txt")"
awk -v c="$cpu_all" -v e="${executed:-0}" -v n="$replicas" -v ms="$elapsed_ms" \
  'BEGIN { printf "replica cpu: %.1f s, all %d replicas (%.2f µs per executed command; %.1f%% of a core each over %.1f s)\n", c, n, (e > 0 ? c * 1e6 / e : 0), c * 1e5 / n / ms, ms / 1000 }'
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


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
# that backend), BENCH_KEEP=1 keeps the temporary directory (logs, stores),
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
work="$(mktemp -d /tmp/pompe-bench-cluster-XXXXXX)"
pids=()
sampler=""
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# shellcheck disable=SC2086
node dist/server/cli.js gen-conf --replicas "$replicas" --hosts 127.0.0.1 --base-peer-port 41000 --base-client-port 42000 \
  --base-http-port 43000 --out "$work/conf" ${BENCH_GEN_CONF_OPTS:-} >/dev/null
byz_id="${BENCH_BYZANTINE%%:*}"
byz_kind="${BENCH_BYZANTINE#*:}"
for ((i = 0; i < replicas; i++)); do
  extra=()
  [ -n "${BENCH_BYZANTINE:-}" ] && [ "$i" = "$byz_id" ] && extra=(--byzantine "$byz_kind")
  node dist/server/cli.js replica --conf "$work/conf" --id "$i" --data-dir "$work/data/replica-$i" \
    --server-backend "${BENCH_SERVER_BACKEND:-uws}" --log-file "$work/replica-$i.log" "${extra[@]}" >"$work/replica-$i.out" 2>&1 &
  pids+=($!)
done
for ((i = 0; i < replicas; i++)); do
  for _ in $(seq 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$((43000 + i))/status" && break
    kill -0 "${pids[$i]}" 2>/dev/null || break # it exited: refused to start
    sleep 0.2
  done
  curl -sf -o /dev/null "http://127.0.0.1:$((43000 + i))/status" || { echo "replica $i did not start: $(cat "$work/replica-$i.out")" >&2; exit 1; }
done
server=$(curl -sf http://127.0.0.1:43000/status | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const t = JSON.parse(s).transport.server; console.log(`${t.backend}${t.tls ? " + TLS" : ""}`); })')

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_s() { awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# One line per second: the RSS of every replica in KiB.
(while true; do line=""; for p in "${pids[@]}"; do line+="$(rss_kib "$p") "; done; echo "$line"; sleep 1; done) >"$work/rss.txt" &
sampler=$!
cpu_before=(); for p in "${pids[@]}"; do cpu_before+=("$(cpu_s "$p")"); done

echo "bench-cluster $kind: $replicas replicas on 127.0.0.1 (Node $(node --version), $server), $seconds s, pompe bench ${bench_opts[*]}" \
  "(conf: $(node -e 'const p=require(process.argv[1]).protocol; console.log(`${p.commitRule}, slot ${p.slotUs} µs, Δ ${p.deltaUs} µs`)' "$work/conf/cluster.json"))"
sidecar=""
if [ -n "${BENCH_SIDECAR:-}" ]; then
  BENCH_CONF="$work/conf" bash -c "$BENCH_SIDECAR" >"$work/sidecar.out" 2>&1 &
  sidecar=$!
fi
node dist/server/cli.js bench --conf "$work/conf" --duration "$seconds" --log-dir "$work/log" "${bench_opts[@]}" | grep -v '^client[0-9]*:'
if [ -n "$sidecar" ]; then
  kill "$sidecar" 2>/dev/null || true
  wait "$sidecar" 2>/dev/null || true
  echo "sidecar ($BENCH_SIDECAR):"
  sed 's/^/  /' "$work/sidecar.out" | tail -n 5
fi

kill "$sampler" 2>/dev/null || true
sampler=""
echo "replicas (resident memory sampled every second over the run; CPU time during it):"
for ((i = 0; i < replicas; i++)); do
  awk -v col=$((i + 1)) -v id="$i" -v after="$(cpu_s "${pids[$i]}")" -v before="${cpu_before[$i]}" \
    'NF >= col { v = $col / 1024; if (n == 0) first = v; if (v > max) max = v; last = v; n++ }
     END { printf "  replica %d: rss max %.0f MiB, first %.0f, last %.0f MiB; cpu %.1f s\n", id, max, first, last, after - before }' "$work/rss.txt"
done
if [ "$seconds" -ge 120 ]; then
  echo "resident memory every minute (MiB, one column per replica):"
  awk 'NR % 60 == 1 { line = sprintf("  %3d min:", (NR - 1) / 60); for (i = 1; i <= NF; i++) line = line sprintf(" %5.0f", $i / 1024); print line }' "$work/rss.txt"
fi
echo "store size per replica on disk: $(du -sh "$work"/data/replica-* 2>/dev/null | awk '{print $1}' | paste -sd' ')"


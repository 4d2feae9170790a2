#!/usr/bin/env bash
# Issue 11's stall attack on a real cluster of replica processes, measured: the same benchmark
# twice on fresh clusters — once with every replica honest, once with replica 3 run as
# `--byzantine withhold` (it serves no batch bytes, inflates its seals, times every view out at
# once) while scripts/attack-hostage.ts plants batches only that replica holds — and the honest
# clients' executed throughput of both, with their ratio. A script that prints figures, not a test.
#
#   scripts/bench-attack.sh [seconds (30)] [-- <pompe bench options> (default: the peak workload)]
# Environment: ATTACK_EVERY_MS (3000), plus bench-cluster.sh's.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
seconds="${1:-30}"
shift $(( $# > 0 ? 1 : 0 ))
[ "${1:-}" = "--" ] && shift
bench=("$@")
[ ${#bench[@]} -eq 0 ] && bench=(--clients 4 --batch-size 1000 --outstanding 4)
[ -f dist/scripts/attack-hostage.js ] || npm run build --silent
every="${ATTACK_EVERY_MS:-3000}"

run() {
  scripts/bench-cluster.sh custom "$seconds" -- "${bench[@]}" | tee "$1"
}
executed() { awk '/^executed:/ { gsub(",", "", $4); sub("/s", "", $4); print $4 }' "$1"; }

out="$(mktemp -d /tmp/pompe-bench-attack-XXXXXX)"
echo "== without the attack"
run "$out/baseline.txt"
echo
echo "== with replica 3 withholding and a client planting hostages every $every ms"
BENCH_BYZANTINE="3:withhold" \
  BENCH_SIDECAR="node dist/scripts/attack-hostage.js --conf \"\$BENCH_CONF\" --accomplice 3 --every-ms $every --duration $((seconds + 10))" \
  run "$out/attack.txt"
base="$(executed "$out/baseline.txt")"
attack="$(executed "$out/attack.txt")"
echo
awk -v b="$base" -v a="$attack" 'BEGIN { printf "honest executed throughput: %.1f cmd/s without the attack, %.1f with it (%.0f%%)\n", b, a, (b > 0 ? 100 * a / b : 0) }'
rm -rf "$out"

#!/usr/bin/env bash
# Several headline workloads, several runs each, on one build or two (before/after a change), the
# runs interleaved so both builds see the same machine: one table of every run and the medians.
# A script that prints figures, not a test. Run it alone: two cores, one benchmark at a time.
#
#   scripts/bench-matrix.sh [-r RUNS (3)] [-s SECONDS (30)] [-w WORKLOADS (peak,shape,light,unbatched,idle)] [TREE...]
#
# TREE: built checkouts to compare (default: this one), e.g. a git worktree of the commit before a
# change: `git worktree add /tmp/before <commit> && (cd /tmp/before && npm ci && npm run build)`.
# Every run goes through this checkout's scripts/bench-cluster.sh with BENCH_TREE=<tree>, so the
# figures are taken the same way for both. Raw outputs are kept in a directory named at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

runs=3
seconds=30
workloads="peak,shape,light,unbatched,idle"
while getopts "r:s:w:" opt; do
  case "$opt" in
    r) runs="$OPTARG" ;;
    s) seconds="$OPTARG" ;;
    w) workloads="$OPTARG" ;;
    *) echo "usage: $0 [-r runs] [-s seconds] [-w workloads] [tree...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ "$runs" =~ ^[1-9][0-9]*$ && "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "runs and seconds must be positive integers" >&2; exit 2; }
trees=("$@")
[ "${#trees[@]}" -gt 0 ] || trees=("$ROOT")
for t in "${trees[@]}"; do
  [ -f "$t/dist/server/cli.js" ] || { echo "$t has no build (dist/server/cli.js): run npm run build there" >&2; exit 2; }
done

out="$(mktemp -d /tmp/pompe-bench-matrix-XXXXXX)"
table="$out/runs.tsv"
printf 'workload\ttree\trun\tcmd_s\torder_p50_ms\texec_p50_ms\tlate_restarts\treplica_us_cmd\treplica_core_pct\tclient_us_cmd\n' >"$table"

label() { git -C "$1" rev-parse --short HEAD 2>/dev/null || basename "$1"; }

IFS=',' read -r -a kinds <<<"$workloads"
for kind in "${kinds[@]}"; do
  for ((r = 1; r <= runs; r++)); do
    for t in "${trees[@]}"; do
      raw="$out/$kind-$(label "$t")-$r.txt"
      BENCH_TREE="$t" "$ROOT/scripts/bench-cluster.sh" "$kind" "$seconds" >"$raw" 2>&1 || { echo "run failed: $raw" >&2; tail -n 5 "$raw" >&2; exit 1; }
      awk -v kind="$kind" -v tree="$(label "$t")" -v run="$r" '
        /^executed:/ { for (i = 1; i <= NF; i++) if ($i ~ /\/s$/) { rate = $i; sub("/s$", "", rate); gsub(",", "", rate) } }
        /^order latency/ { order = $5 }
        /^exec latency/ { exec = $5 }
        /^late restarts:/ { late = $3 }
        /^client cpu:/ { client = $5; sub(/^\(/, "", client) }
        /^replica cpu:/ { rus = $8; sub(/^\(/, "", rus); for (i = 1; i <= NF; i++) if ($i ~ /%$/) { core = $i; sub("%$", "", core) } }
        END { printf "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", kind, tree, run, rate == "" ? "-" : rate, order == "" ? "-" : order, exec == "" ? "-" : exec, late == "" ? "-" : late, kind == "idle" ? "-" : rus, core, client == "" ? "-" : client }
      ' "$raw" | tee -a "$table"
    done
  done
done

echo
echo "medians ($runs runs of $seconds s each; raw outputs in $out):"
printf '| workload | build | cmd/s | order p50 ms | exec p50 ms | late restarts | replica µs/cmd (all) | replica %% of a core (each) | client µs/cmd |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
awk -F'\t' 'NR > 1 { key = $1 "\t" $2; if (!(key in seen)) { seen[key] = 1; order[++n] = key } for (c = 4; c <= 10; c++) vals[key, c] = vals[key, c] " " $c }
  function median(list,    a, k, i, j, t) {
    k = split(list, a, " "); if (a[1] == "-") return "-"
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  END { for (i = 1; i <= n; i++) { split(order[i], kt, "\t"); line = "| " kt[1] " | " kt[2]; for (c = 4; c <= 10; c++) line = line " | " median(vals[order[i], c]); print line " |" } }' "$table"

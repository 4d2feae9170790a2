# Shared by scripts/bench-cluster.sh and scripts/bench-flood.sh (sourced, not run): a fresh cluster
# of replica processes on 127.0.0.1 in a temporary directory, torn down on exit, and per-replica
# resident memory and CPU time. Uses: $replicas (count); sets $work, $pids, $sampler.
# Environment: BENCH_GEN_CONF_OPTS (extra gen-conf options), BENCH_SERVER_BACKEND (uws; ws to run
# on the fallback), BENCH_BYZANTINE (<id>:<kind>: replica <id> runs with --byzantine <kind>),
# BENCH_REPLICA_NODE_ARGS (node options for the replica processes only, e.g.
# "--cpu-prof --cpu-prof-dir=/tmp/prof": a profile per replica, written when it stops), BENCH_KEEP=1
# keeps the directory.

work="$(mktemp -d /tmp/pompe-bench-cluster-XXXXXX)"
# Fixed ports below the kernel's ephemeral range (32768+: an outgoing connection's local port there
# can hold a port we want to listen on) and apart from gen-conf's defaults (10000/20000/30000 + i,
# which `npm start` uses) and the tests' range (server/freePorts.ts).
bench_peer_base=14000
bench_client_base=15000
bench_http_base=16000
pids=()
sampler=""
extra_pids=()

cluster_cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  for p in "${extra_pids[@]}" "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${extra_pids[@]}" "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cluster_cleanup EXIT

# Generates the cluster and starts its replicas; returns once every one serves /status.
cluster_start() {
  # shellcheck disable=SC2086
  node dist/server/cli.js gen-conf --replicas "$replicas" --hosts 127.0.0.1 --base-peer-port "$bench_peer_base" --base-client-port "$bench_client_base" \
    --base-http-port "$bench_http_base" --out "$work/conf" ${BENCH_GEN_CONF_OPTS:-} >/dev/null
  local byz="${BENCH_BYZANTINE:-}" extra
  local byz_id="${byz%%:*}" byz_kind="${byz#*:}"
  # An older build (BENCH_TREE) may predate --server-backend; it then picks its backend itself.
  # (The help is read whole, not piped into grep -q: under pipefail a SIGPIPE would drop the option
  # for a build that has it, and the replicas would start without the uWS requirement.)
  local backend_opt=() replica_help
  replica_help="$(node dist/server/cli.js replica --help 2>/dev/null || true)"
  [[ "$replica_help" == *--server-backend* ]] && backend_opt=(--server-backend "${BENCH_SERVER_BACKEND:-uws}")
  for ((i = 0; i < replicas; i++)); do
    extra=()
    [ -n "$byz" ] && [ "$i" = "$byz_id" ] && extra=(--byzantine "$byz_kind")
    # MALLOC_ARENA_MAX: see server/processEnv.ts.
    # shellcheck disable=SC2086
    MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" node ${BENCH_REPLICA_NODE_ARGS:-} dist/server/cli.js replica --conf "$work/conf" --id "$i" --data-dir "$work/data/replica-$i" \
      "${backend_opt[@]}" --log-file "$work/replica-$i.log" "${extra[@]}" >"$work/replica-$i.out" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < replicas; i++)); do
    for _ in $(seq 300); do
      curl -sf -o /dev/null "http://127.0.0.1:$((bench_http_base + i))/status" && break
      kill -0 "${pids[$i]}" 2>/dev/null || break # it exited: refused to start
      sleep 0.2
    done
    curl -sf -o /dev/null "http://127.0.0.1:$((bench_http_base + i))/status" || { echo "replica $i did not start: $(cat "$work/replica-$i.out")" >&2; exit 1; }
  done
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_s() { awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Samples every replica's RSS (KiB) once a second into $1, one line per second; records CPU now.
rss_sampling_start() {
  (while true; do line=""; for p in "${pids[@]}"; do line+="$(rss_kib "$p") "; done; echo "$line"; sleep 1; done) >"$1" &
  sampler=$!
  cpu_before=(); for p in "${pids[@]}"; do cpu_before+=("$(cpu_s "$p")"); done
}

# Stops the sampler and prints each replica's RSS (max, first, last) from $1 and CPU since the start.
rss_sampling_report() {
  kill "$sampler" 2>/dev/null || true
  sampler=""
  for ((i = 0; i < replicas; i++)); do
    awk -v col=$((i + 1)) -v id="$i" -v after="$(cpu_s "${pids[$i]}")" -v before="${cpu_before[$i]}" \
      'NF >= col { v = $col / 1024; if (n == 0) first = v; if (v > max) max = v; last = v; n++ }
       END { printf "  replica %d: rss max %.0f MiB, first %.0f, last %.0f MiB; cpu %.1f s\n", id, max, first, last, after - before }' "$1"
  done
}

# CPU seconds all replicas spent since rss_sampling_start (call before rss_sampling_report).
replicas_cpu_s() {
  local total=0
  for ((i = 0; i < replicas; i++)); do total=$(awk -v t="$total" -v a="$(cpu_s "${pids[$i]}")" -v b="${cpu_before[$i]}" 'BEGIN { printf "%.2f", t + a - b }'); done
  echo "$total"
}

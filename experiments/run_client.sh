#!/usr/bin/env bash
# Runs the benchmark clients for a fixed time, then stops them (and, as Pompe-HS does, the
# replicas too, unless POMPE_KEEP_SERVERS=1).
#   run_client.sh [user] <clients> <seconds> local|distributed
# local: all clients in one benchmark process on this machine;
# distributed: clients spread over the hosts of conf-distributed/client.hosts (over ssh).
# Logs: client<i>.order.log, client<i>.exec.log, client<i>.detail.log in experiments/log/
# (collect them with data.sh, summarise with process.sh).
source "$(dirname "$0")/lib.sh"
parse_mode_args 3 "$@" || die "usage: run_client.sh [user] <clients> <seconds> local|distributed"
CLIENTS="${ARGS[0]}"
SECONDS_TO_RUN="${ARGS[1]}"
[[ "$CLIENTS" =~ ^[1-9][0-9]*$ ]] || die "clients must be a positive integer"
[[ "$SECONDS_TO_RUN" =~ ^[1-9][0-9]*$ ]] || die "seconds must be a positive integer"
ensure_built
[ -f "$CONF_DIR/cluster.json" ] || die "no $CONF_DIR/cluster.json: start the replicas first (run_server.sh $MODE)"
mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/client*.log "$LOG_DIR"/client*.bench.json
# The clients stop themselves after the duration; this is the hard stop if one hangs.
HARD_STOP_S=$((SECONDS_TO_RUN + ${POMPE_CLIENT_GRACE_S:-60}))
BENCH_OPTS=(${POMPE_BENCH_OPTS:-})

if [ "$MODE" = local ]; then
  timeout --signal=TERM "$HARD_STOP_S" "${CLI[@]}" bench --conf "$CONF_DIR" --clients "$CLIENTS" \
    --duration "$SECONDS_TO_RUN" --log-dir "$LOG_DIR" "${BENCH_OPTS[@]}" &
  echo $! >"$LOG_DIR/client-0.pid"
  status=0; wait $! || status=$?
  rm -f "$LOG_DIR/client-0.pid"
else
  mapfile -t HOSTS < <(hosts_of "$CONF_DIR/client.hosts")
  [ "${#HOSTS[@]}" -gt 0 ] || die "no client hosts in $CONF_DIR/client.hosts"
  per=$(( (CLIENTS + ${#HOSTS[@]} - 1) / ${#HOSTS[@]} ))
  pids=()
  for j in "${!HOSTS[@]}"; do
    base=$((j * per)); count=$(( CLIENTS - base < per ? CLIENTS - base : per ))
    [ "$count" -gt 0 ] || break
    echo "clients $base..$((base + count - 1)) on ${HOSTS[$j]}"
    remote "${HOSTS[$j]}" "cd '$POMPE_REMOTE_DIR' && mkdir -p experiments/log && rm -f experiments/log/client*.log experiments/log/client*.bench.json && \
      timeout --signal=TERM $HARD_STOP_S $REMOTE_POMPE bench --conf experiments/conf-$MODE \
      --clients $count --client-index-base $base --duration $SECONDS_TO_RUN --log-dir experiments/log ${BENCH_OPTS[*]}" \
      </dev/null >"$LOG_DIR/client-host$j.out" 2>&1 &
    pids+=($!)
  done
  status=0
  for p in "${pids[@]}"; do wait "$p" || status=$?; done
  cat "$LOG_DIR"/client-host*.out
fi

if [ "${POMPE_KEEP_SERVERS:-0}" != 1 ]; then "$EXP_DIR/stop.sh" ${POMPE_USER:+"$POMPE_USER"} "$MODE"; fi
exit "$status"

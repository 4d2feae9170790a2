#!/usr/bin/env bash
# Starts the replicas of experiments/conf-<mode>/ (line i of server.hosts runs replica i).
#   run_server.sh [user] local|distributed
# local: replicas on this machine in the background (a 4-replica conf is generated if missing);
# distributed: each replica on its host over ssh (deploy first: scripts/deploy.sh).
# Pid files and logs go to experiments/log/. Returns once every replica answers on /status.
source "$(dirname "$0")/lib.sh"
parse_mode_args 1 "$@" || die "usage: run_server.sh [user] local|distributed"
ensure_built
[ "$MODE" = local ] && ensure_local_conf
[ -f "$CONF_DIR/cluster.json" ] || die "no $CONF_DIR/cluster.json (generate it: pompe gen-conf --out $CONF_DIR …)"
mkdir -p "$LOG_DIR"

i=0
while read -r host; do
  if [ "$MODE" = local ]; then
    [ -f "$LOG_DIR/replica-$i.pid" ] && kill -0 "$(cat "$LOG_DIR/replica-$i.pid")" 2>/dev/null && die "replica $i is already running (pid $(cat "$LOG_DIR/replica-$i.pid")); run experiments/stop.sh local"
    nohup "${CLI[@]}" replica --conf "$CONF_DIR" --id "$i" --data-dir "$LOG_DIR/data-$MODE/replica-$i" \
      --log-file "$LOG_DIR/replica-$i.log" >"$LOG_DIR/replica-$i.out" 2>&1 &
    echo $! >"$LOG_DIR/replica-$i.pid"
  else
    conf_rel="experiments/conf-$MODE"
    remote "$host" "cd '$POMPE_REMOTE_DIR' && mkdir -p experiments/log && \
      (nohup node dist/server/cli.js replica --conf $conf_rel --id $i --data-dir experiments/log/data-$MODE/replica-$i \
        --log-file experiments/log/replica-$i.log > experiments/log/replica-$i.out 2>&1 & echo \$! > experiments/log/replica-$i.pid)" </dev/null
  fi
  echo "replica $i started on $host"
  i=$((i + 1))
done < <(hosts_of "$CONF_DIR/server.hosts")

# Wait until every replica serves /status (it listens after loading its store).
deadline=$((SECONDS + ${POMPE_START_TIMEOUT_S:-60}))
for url in $(node -e 'for (const r of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).replicas) console.log(`http://${r.host}:${r.httpPort}/status`)' "$CONF_DIR/cluster.json"); do
  until curl -sf -o /dev/null "$url"; do
    [ $SECONDS -lt $deadline ] || die "replica at $url did not come up; see $LOG_DIR/replica-*.out"
    sleep 0.2
  done
done
echo "all replicas up"

#!/usr/bin/env bash
# Starts the replicas of experiments/conf-<mode>/ (line i of server.hosts runs replica i).
#   run_server.sh [user] local|distributed
# local: replicas on this machine in the background (a 4-replica conf is generated if missing);
# distributed: each replica on its host over ssh, from the package scripts/deploy.sh installed there.
# Pid files and logs go to experiments/log/. Returns once every replica answers on /status.
# POMPE_SUPERVISOR=systemd (distributed): each host writes a unit with `pompe systemd` and starts
# it (restarted on failure, run as $POMPE_SERVICE_USER, default pompe, which must exist), through
# $POMPE_SUDO (default "sudo -n"; empty when ssh logs in as root). stop.sh stops the units.
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
    # MALLOC_ARENA_MAX: see server/processEnv.ts (the systemd unit sets it too).
    MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" nohup "${CLI[@]}" replica --conf "$CONF_DIR" --id "$i" --data-dir "$LOG_DIR/data-$MODE/replica-$i" \
      --log-file "$LOG_DIR/replica-$i.log" >"$LOG_DIR/replica-$i.out" 2>&1 &
    echo $! >"$LOG_DIR/replica-$i.pid"
  else
    conf_rel="experiments/conf-$MODE"
    data="experiments/log/data-$MODE/replica-$i"
    if [ "${POMPE_SUPERVISOR:-}" = systemd ]; then
      sudo_="${POMPE_SUDO-sudo -n}" user="${POMPE_SERVICE_USER:-pompe}" unit="pompe-replica-$i"
      remote "$host" "cd '$POMPE_REMOTE_DIR' && mkdir -p $data && \
        $sudo_ $REMOTE_POMPE systemd --conf $conf_rel --id $i --data-dir $data --user $user --out /etc/systemd/system/$unit.service && \
        $sudo_ chown -R $user: $conf_rel $data && $sudo_ systemctl daemon-reload && $sudo_ systemctl restart $unit" </dev/null
    else
      remote "$host" "cd '$POMPE_REMOTE_DIR' && mkdir -p experiments/log && \
        (MALLOC_ARENA_MAX=2 nohup $REMOTE_POMPE replica --conf $conf_rel --id $i --data-dir $data \
          --log-file experiments/log/replica-$i.log > experiments/log/replica-$i.out 2>&1 & echo \$! > experiments/log/replica-$i.pid)" </dev/null
    fi
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

#!/usr/bin/env bash
# Collects the clients' logs into experiments/data/<mode>-<time>/ (and points data/latest at it),
# then writes run.json there (conf, benchmark options, start/end, code revision, summary figures).
# Logs are moved, not copied (a peak run writes hundreds of MB): local ones with mv, remote ones
# streamed over ssh and deleted on the host once received. POMPE_GZIP=1 also compresses them
# (the process script reads .gz logs as they are).
#   data.sh [user] local|distributed
source "$(dirname "$0")/lib.sh"
parse_mode_args 1 "$@" || die "usage: data.sh [user] local|distributed"
ensure_built
dest="$DATA_DIR/$MODE-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$dest"
FILES='client*.log client*.bench.json'
if [ "$MODE" = local ]; then
  compgen -G "$LOG_DIR/client*.log" >/dev/null || { rmdir "$dest"; die "no client logs in $LOG_DIR (run run_client.sh first)"; }
  # shellcheck disable=SC2086
  (cd "$LOG_DIR" && for f in $FILES; do [ -e "$f" ] && mv -f "$f" "$dest"/; done; true)
else
  for host in $(hosts_of "$CONF_DIR/client.hosts" | sort -u); do
    if remote "$host" "cd '$POMPE_REMOTE_DIR/experiments/log' && tar cf - \$(ls $FILES 2>/dev/null)" </dev/null | tar xf - -C "$dest"; then
      remote "$host" "cd '$POMPE_REMOTE_DIR/experiments/log' && rm -f $FILES" </dev/null || echo "could not delete the logs on $host"
    else
      echo "no logs from $host"
    fi
  done
fi
[ "${POMPE_GZIP:-0}" = 1 ] && gzip -1 "$dest"/client*.log
conf_args=()
[ -f "$CONF_DIR/cluster.json" ] && conf_args=(--conf "$CONF_DIR")
node "$POMPE_ROOT/dist/experiments/runInfo.js" "$dest" "${conf_args[@]}" >/dev/null || echo "warning: could not write $dest/run.json"
ln -sfn "$(basename "$dest")" "$DATA_DIR/latest"
echo "$(ls "$dest" | wc -l) files in $dest"

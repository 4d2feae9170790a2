#!/usr/bin/env bash
# Collects the clients' logs into experiments/data/<mode>-<time>/ (and points data/latest at it).
#   data.sh [user] local|distributed
source "$(dirname "$0")/lib.sh"
parse_mode_args 1 "$@" || die "usage: data.sh [user] local|distributed"
dest="$DATA_DIR/$MODE-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$dest"
if [ "$MODE" = local ]; then
  cp "$LOG_DIR"/client*.log "$dest"/ 2>/dev/null || die "no client logs in $LOG_DIR (run run_client.sh first)"
else
  for host in $(hosts_of "$CONF_DIR/client.hosts" | sort -u); do
    remote "$host" "cd '$POMPE_REMOTE_DIR/experiments/log' && tar cf - client*.log" </dev/null | tar xf - -C "$dest" \
      || echo "no logs from $host"
  done
fi
ln -sfn "$(basename "$dest")" "$DATA_DIR/latest"
echo "$(ls "$dest" | wc -l) log files in $dest"

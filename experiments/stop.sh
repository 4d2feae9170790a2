#!/usr/bin/env bash
# Stops the replicas (and any benchmark clients) started by run_server.sh / run_client.sh.
#   stop.sh [user] local|distributed
# SIGTERM first (replicas flush and close their store), SIGKILL after a grace period.
source "$(dirname "$0")/lib.sh"
parse_mode_args 1 "$@" || die "usage: stop.sh [user] local|distributed"
GRACE_S=${POMPE_STOP_GRACE_S:-15}

stop_pidfile() { # pidfile
  local pid; pid=$(cat "$1" 2>/dev/null) || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((GRACE_S * 5))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { echo "pid $pid did not stop in ${GRACE_S}s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$1"
}

if [ "$MODE" = local ]; then
  for f in "$LOG_DIR"/client-*.pid "$LOG_DIR"/replica-*.pid; do [ -e "$f" ] && stop_pidfile "$f"; done
else
  stop_remote='for f in experiments/log/client-*.pid experiments/log/replica-*.pid; do [ -e "$f" ] || continue; p=$(cat "$f"); kill -TERM $p 2>/dev/null; for i in $(seq '$((GRACE_S * 5))'); do kill -0 $p 2>/dev/null || break; sleep 0.2; done; kill -KILL $p 2>/dev/null; rm -f "$f"; done; true'
  # Units started by run_server.sh with POMPE_SUPERVISOR=systemd (systemd stops them gracefully, SIGTERM first).
  if [ "${POMPE_SUPERVISOR:-}" = systemd ]; then stop_remote="${POMPE_SUDO-sudo -n} systemctl stop 'pompe-replica-*'; $stop_remote"; fi
  for host in $( (hosts_of "$EXP_DIR/conf-$MODE/server.hosts"; hosts_of "$EXP_DIR/conf-$MODE/client.hosts") | sort -u); do
    remote "$host" "cd '$POMPE_REMOTE_DIR' && $stop_remote" </dev/null || echo "could not reach $host"
  done
fi
echo "stopped"

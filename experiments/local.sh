#!/usr/bin/env bash
# The whole local experiment on embedded defaults (what `npm start` runs): a 4-replica conf on
# 127.0.0.1 if missing, the replicas, 4 benchmark clients for 10 s, the logs summarised, stop.
#   local.sh [clients (4)] [seconds (10)]
source "$(dirname "$0")/lib.sh"
CLIENTS="${1:-4}"
DURATION="${2:-10}"
MODE=local
CONF_DIR="$EXP_DIR/conf-local"
ensure_built
ensure_local_conf
trap '"$EXP_DIR/stop.sh" local >/dev/null 2>&1 || true' EXIT
"$EXP_DIR/run_server.sh" local
"$EXP_DIR/run_client.sh" "$CLIENTS" "$DURATION" local
"$EXP_DIR/data.sh" local >/dev/null
for kind in order exec; do
  echo
  echo "== $kind latency (experiments/data/latest) =="
  "$EXP_DIR/process.sh" "$kind"
done

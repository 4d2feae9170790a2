# Shared by the experiment scripts. Sourced, not run.
#
# Remote hosts are reached with $POMPE_REMOTE (default: ssh in batch mode as $POMPE_USER), which
# is called as `$POMPE_REMOTE <host> <shell command>`; scripts/netns-cluster.sh sets it to run
# commands inside network namespaces instead, so the distributed path can be tested on one machine.
# $POMPE_REMOTE_DIR is the directory on the remote hosts where scripts/deploy.sh installed the
# package and put the conf (default: the same path as here); remote commands run its installed
# `pompe` ($REMOTE_POMPE, relative to that directory).
# On this machine, $POMPE_CONF_DIR, $POMPE_LOG_DIR and $POMPE_DATA_DIR move the conf (default
# experiments/conf-<mode>; remote hosts always use that path), the logs
# and the collected runs.
set -euo pipefail

POMPE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXP_DIR="$POMPE_ROOT/experiments"
LOG_DIR="${POMPE_LOG_DIR:-$EXP_DIR/log}"
DATA_DIR="${POMPE_DATA_DIR:-$EXP_DIR/data}"
POMPE_REMOTE_DIR="${POMPE_REMOTE_DIR:-$POMPE_ROOT}"
REMOTE_POMPE="${POMPE_REMOTE_POMPE:-node_modules/.bin/pompe}"
CLI=(node "$POMPE_ROOT/dist/server/cli.js")

die() { echo "error: $*" >&2; exit 1; }

# Pompe-HS scripts take the ssh user first: accept "[user] <args...> <mode>".
# Sets POMPE_USER (if given) and MODE; leaves the other arguments in ARGS.
parse_mode_args() {
  local want="$1"; shift
  ARGS=("$@")
  if [ "${#ARGS[@]}" -eq $((want + 1)) ]; then POMPE_USER="${ARGS[0]}"; ARGS=("${ARGS[@]:1}"); fi
  [ "${#ARGS[@]}" -eq "$want" ] || return 1
  MODE="${ARGS[$((want - 1))]}"
  case "$MODE" in local|distributed) ;; *) die "mode must be 'local' or 'distributed', got '$MODE'";; esac
  CONF_DIR="${POMPE_CONF_DIR:-$EXP_DIR/conf-$MODE}"
}

remote() {
  local host="$1"; shift
  if [ -n "${POMPE_REMOTE:-}" ]; then
    $POMPE_REMOTE "$host" "$*"
  else
    ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new "${POMPE_USER:+$POMPE_USER@}$host" "$*"
  fi
}

ensure_built() {
  [ -f "$POMPE_ROOT/dist/server/cli.js" ] || (cd "$POMPE_ROOT" && npm run build --silent)
}

hosts_of() { grep -v '^\s*\(#\|$\)' "$1" || true; }

# Local experiments get a 4-replica conf on 127.0.0.1 the first time.
ensure_local_conf() {
  if [ ! -f "$CONF_DIR/cluster.json" ]; then
    echo "generating $CONF_DIR (${POMPE_REPLICAS:-4} replicas on 127.0.0.1)"
    "${CLI[@]}" gen-conf --replicas "${POMPE_REPLICAS:-4}" --hosts 127.0.0.1 --out "$CONF_DIR"
  fi
}

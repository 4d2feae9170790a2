#!/usr/bin/env bash
# Copies the built project and a conf directory to every host of that conf (server.hosts and
# client.hosts), as experiments/conf-distributed/ under $POMPE_REMOTE_DIR on each host.
#   scripts/deploy.sh [conf-dir (experiments/conf-distributed)] [user]
# Build first (npm run build). node_modules goes along, so the hosts need Node.js only.
# Hosts that share this machine's filesystem (scripts/netns-cluster.sh) need no deploy.
source "$(dirname "$0")/../experiments/lib.sh"
CONF="${1:-$EXP_DIR/conf-distributed}"
[ $# -ge 2 ] && POMPE_USER="$2"
[ -f "$CONF/cluster.json" ] || die "no cluster.json in $CONF"
[ -f "$POMPE_ROOT/dist/server/cli.js" ] || die "build first: npm run build"

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/experiments/conf-distributed"
cp -r "$CONF"/. "$staging/experiments/conf-distributed/"
rm -rf "$staging/experiments/conf-distributed/data"

for host in $( (hosts_of "$CONF/server.hosts"; hosts_of "$CONF/client.hosts") | sort -u); do
  echo "deploying to $host:$POMPE_REMOTE_DIR"
  tar czf - -C "$POMPE_ROOT" dist node_modules package.json experiments/lib.sh experiments/run_server.sh \
      experiments/run_client.sh experiments/stop.sh experiments/data.sh experiments/process.sh \
    | remote "$host" "mkdir -p '$POMPE_REMOTE_DIR' && tar xzf - -C '$POMPE_REMOTE_DIR'"
  tar czf - -C "$staging" experiments/conf-distributed | remote "$host" "tar xzf - -C '$POMPE_REMOTE_DIR'"
done
echo "deployed"

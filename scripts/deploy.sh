#!/usr/bin/env bash
# Installs pompe-ts on remote hosts as an npm package and gives each host its part of a conf.
# Hosts need Node.js ≥ 20 and npm, and are reached as the experiment scripts reach them
# (experiments/lib.sh: ssh as $POMPE_USER, or $POMPE_REMOTE); everything goes to $POMPE_REMOTE_DIR.
#
#   scripts/deploy.sh [conf-dir (experiments/conf-distributed)] [user]   install + conf, on the conf's hosts
#   scripts/deploy.sh install <host>...       pack this tree and install the package on each host
#   scripts/deploy.sh keygen <host>...        replica i's key made on the i-th host (a host listed
#                                             twice runs two replicas); prints the public keys, one
#                                             a line, for `pompe gen-conf --public-keys <file>`
#   scripts/deploy.sh conf [conf-dir]         send each host its part of the conf
#
# install: `npm pack` (a clean build) here; on each host the tarball is installed with production
# dependencies only, so every host gets the native binaries (uWS, LevelDB) for its own Node, CPU and
# libc. npm 11 runs the native packages' build scripts only where the package.json it installs
# into allows them: the host's package.json takes allowScripts from ours. POMPE_NPM_INSTALL_OPTS
# adds npm options (e.g. --offline where hosts reach no registry but share a cache).
#
# conf: every host gets cluster.json, server.hosts and client.hosts. A replica's host also gets that
# replica's secret key and TLS files, and no other's; a secret absent from the conf dir (made on the
# host by keygen) is not sent, and its host is checked to hold it. Client hosts get no secret.
source "$(dirname "$0")/../experiments/lib.sh"
REMOTE_CONF="experiments/conf-distributed"
STAGING=$(mktemp -d)
trap 'rm -rf "$STAGING"' EXIT
# Progress goes to stderr: `deploy.sh keygen` prints the public keys on stdout.
say() { echo "$*" >&2; }

# The hosts of a conf, one per line: replica hosts (in server.hosts order), then client hosts.
conf_hosts() { (hosts_of "$1/server.hosts"; hosts_of "$1/client.hosts") | awk '!seen[$0]++'; }

install_on() {
  local staging="$STAGING/install" tarball
  mkdir -p "$staging"
  say "packing $(node -p 'require(process.argv[1]).name + "@" + require(process.argv[1]).version' "$POMPE_ROOT/package.json")"
  (cd "$POMPE_ROOT" && npm pack --silent --pack-destination "$staging" >/dev/null)
  tarball=$(cd "$staging" && ls ./*.tgz)
  tarball=${tarball#./}
  # The host's project: private, allowing the install scripts our package.json allows.
  node -e 'const p = require(process.argv[1]); console.log(JSON.stringify({ name: "pompe-host", private: true, allowScripts: p.allowScripts }, null, 2))' \
    "$POMPE_ROOT/package.json" >"$staging/package.json"
  for host in "$@"; do
    say "installing $tarball on $host:$POMPE_REMOTE_DIR"
    tar cf - -C "$staging" package.json "$tarball" | remote "$host" "mkdir -p '$POMPE_REMOTE_DIR' && cd '$POMPE_REMOTE_DIR' && tar xf - && \
      npm install --omit=dev --no-audit --no-fund --no-save ${POMPE_NPM_INSTALL_OPTS:-} './$tarball' >npm-install.log 2>&1 \
        || { tail -20 npm-install.log >&2; exit 1; }; rm -f './$tarball'; $REMOTE_POMPE --version >/dev/null" \
      || die "install on $host failed"
  done
}

keygen_on() {
  local i=0
  for host in "$@"; do
    remote "$host" "cd '$POMPE_REMOTE_DIR' && $REMOTE_POMPE keygen --replica $i --out $REMOTE_CONF/replica-$i.secret.json" </dev/null \
      || die "keygen for replica $i on $host failed (an existing key is kept: remove it on the host to make a new one)"
    i=$((i + 1))
  done
}

send_conf() {
  local conf="$1" staging="$STAGING/conf"
  [ -f "$conf/cluster.json" ] || die "no cluster.json in $conf"
  mapfile -t replica_hosts < <(hosts_of "$conf/server.hosts")
  for host in $(conf_hosts "$conf"); do
    local part="$staging/$host/$REMOTE_CONF" mine=()
    mkdir -p "$part"
    cp "$conf/cluster.json" "$conf/server.hosts" "$conf/client.hosts" "$part/"
    for i in "${!replica_hosts[@]}"; do
      [ "${replica_hosts[$i]}" = "$host" ] || continue
      mine+=("$i")
      for f in "replica-$i.secret.json" "replica-$i.tls.crt" "replica-$i.tls.key"; do
        [ -f "$conf/$f" ] && cp -p "$conf/$f" "$part/"
      done
    done
    say "conf to $host: $(cd "$part" && ls | paste -sd' ')"
    tar cf - -C "$staging/$host" "$REMOTE_CONF" | remote "$host" "mkdir -p '$POMPE_REMOTE_DIR' && tar xpf - -C '$POMPE_REMOTE_DIR'" \
      || die "sending the conf to $host failed"
    for i in "${mine[@]}"; do
      remote "$host" "test -f '$POMPE_REMOTE_DIR/$REMOTE_CONF/replica-$i.secret.json'" </dev/null \
        || die "replica $i's secret key is neither in $conf nor on $host: run scripts/deploy.sh keygen there first"
    done
  done
}

case "${1:-}" in
  install) shift; [ $# -gt 0 ] || die "usage: deploy.sh install <host>..."; install_on "$@" ;;
  keygen) shift; [ $# -gt 0 ] || die "usage: deploy.sh keygen <host>..."; keygen_on "$@" ;;
  conf) send_conf "${2:-$EXP_DIR/conf-distributed}" ;;
  *)
    CONF="${1:-$EXP_DIR/conf-distributed}"
    [ $# -ge 2 ] && POMPE_USER="$2"
    [ -f "$CONF/cluster.json" ] || die "no cluster.json in $CONF"
    mapfile -t all_hosts < <(conf_hosts "$CONF")
    install_on "${all_hosts[@]}"
    send_conf "$CONF"
    ;;
esac
say "done"

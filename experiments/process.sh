#!/usr/bin/env bash
# Summarises client logs the Pompe-HS way, with throughput and a cross-client fairness check.
#   process.sh order|exec|client [dir (default: experiments/data/latest)] [--plot out.png] [--json]
source "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || die "usage: process.sh order|exec|client [dir] [--plot file] [--json]"
kind="$1"; shift
dir="$DATA_DIR/latest"
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then dir="$1"; shift; fi
ensure_built
exec node "$POMPE_ROOT/dist/experiments/process.js" "$kind" "$dir" "$@"

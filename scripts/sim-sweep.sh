#!/usr/bin/env bash
# The long random seed sweep of the consensus simulation, kept out of `npm test` (the CI seed set is
# sim/consensus.test.ts). Builds once, then runs the simulator CLI over COUNT seeds for every
# (n ∈ {4, 7}, rule ∈ {2-chain, 3-chain}) with every fault kind and the fast simulated signatures,
# printing the CLI's output. It stops at the first violation (exit 1) with the seed, its scenario
# and the command that reproduces it, also written to .sim-failures/.
#
# Usage: scripts/sim-sweep.sh [OFFSET [COUNT [extra CLI options...]]]
#   OFFSET  seeds run from OFFSET+1 to OFFSET+COUNT (default 0: a fresh range each time you pass one)
#   COUNT   seeds per (n, rule) (default 500)
#   e.g.    scripts/sim-sweep.sh 10000            # seeds 10001..10500, 2,000 runs
#           scripts/sim-sweep.sh 0 100 --workers 4 --after-gst-ms 20000
set -euo pipefail
cd "$(dirname "$0")/.."

offset="${1:-0}"
count="${2:-500}"
shift $(( $# > 2 ? 2 : $# ))
if ! [[ "$offset" =~ ^[0-9]+$ && "$count" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [OFFSET [COUNT [extra CLI options...]]]  (non-negative OFFSET, positive COUNT)" >&2
  exit 2
fi

npm run build --silent
first=$(( offset + 1 ))
last=$(( offset + count ))
echo "sweep: seeds ${first}..${last}, n = 4 and 7, both rules, all faults, fast crypto"
exec node dist/sim/cli.js --replicas 4,7 --seeds "${first}..${last}" --faults all --rule both --crypto fast "$@"

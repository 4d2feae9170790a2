#!/usr/bin/env bash
# The long random seed sweep of the full simulation (replica core, consensus, execution, clients),
# kept out of `npm test` (the CI seed set is sim/ordering.test.ts). Builds once, then runs the
# simulator CLI's `full` layer over COUNT seeds for every (n ∈ {4, 7}, rule ∈ {3-chain, 2-chain},
# client mode ∈ {direct, gateway}) with every fault kind of THREATS.md and the fast simulated
# signatures: 8 runs per seed. It prints a summary line per block of seeds and the final table
# (with the fairness columns), and stops at the first violation (exit 1) with the seed, its scenario
# and the command that reproduces it, also written to .sim-failures/.
#
# Usage: scripts/sim-sweep-full.sh [OFFSET [COUNT [extra CLI options...]]]
#   OFFSET  seeds run from OFFSET+1 to OFFSET+COUNT (default 0)
#   COUNT   seeds per (n, rule, mode) (default 250: 2,000 runs)
#   e.g.    scripts/sim-sweep-full.sh 10000            # seeds 10001..10250, 2,000 runs
#           scripts/sim-sweep-full.sh 0 50 --workers 4 --faults crash,partition,medianPicker
set -euo pipefail
cd "$(dirname "$0")/.."

offset="${1:-0}"
count="${2:-250}"
shift $(( $# > 2 ? 2 : $# ))
if ! [[ "$offset" =~ ^[0-9]+$ && "$count" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [OFFSET [COUNT [extra CLI options...]]]  (non-negative OFFSET, positive COUNT)" >&2
  exit 2
fi

npm run build --silent
first=$(( offset + 1 ))
last=$(( offset + count ))
echo "full sweep: seeds ${first}..${last}, n = 4 and 7, both rules, direct and gateway clients, all faults, fast crypto"
exec node dist/sim/cli.js --layer full --replicas 4,7 --seeds "${first}..${last}" --faults all --rule both --modes both \
  --crypto fast --block 50 "$@"
